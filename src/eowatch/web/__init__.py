"""The browser application: the analyst map (``/app/``) and the operations
dashboard (``/app/ops.html``), plain HTML and ES modules served as static files.
Every data call the pages make goes to the API with the key the user entered."""

from .routes import router

__all__ = ["router"]
