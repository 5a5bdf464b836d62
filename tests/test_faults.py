"""A run stopped mid-write leaves nothing behind: SIGTERM cleans up as Ctrl-C does,
and what a killed run left is removed by the next run of the same id. On the
bundled real Paris pair."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings

# Runs the Paris pair and sends itself SIGTERM as soon as the write stage starts.
_TERMINATED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from eowatch.pipeline import DetectRequest, detect_pair
    from eowatch.settings import Settings

    def progress(stage):
        if stage == "write":
            os.kill(os.getpid(), signal.SIGTERM)

    paris, out = Path(sys.argv[1]), Path(sys.argv[2])
    request = DetectRequest(str(paris / "imgs_1"), str(paris / "imgs_2"), preset="s2-cva")
    detect_pair(request, Settings(output_dir=out), out, progress)
    print("the run was not stopped")
    """
)


def test_sigterm_during_the_write_stage_leaves_no_partial_folder(paris: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", _TERMINATED_RUN, str(paris), str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert "not stopped" not in done.stdout
    assert out.is_dir() and list(out.iterdir()) == []  # not even a hidden .partial-* folder


def test_the_next_run_removes_what_a_killed_run_left(paris: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    request = DetectRequest(str(paris / "imgs_1"), str(paris / "imgs_2"), preset="s2-cva")
    first = detect_pair(request, Settings(output_dir=out), out)
    # What SIGKILL during a write, or during the swap of a re-run, would leave:
    stale = [out / f".{first.folder.name}.partial-0badc0de", out / f".{first.folder.name}.old-0badc0de"]
    for folder in stale:
        folder.mkdir()
        (folder / "change_map.tif").write_bytes(b"half a file")
    other_run = out / ".another-run.partial-12345678"  # another run id's staging is not touched
    other_run.mkdir()
    again = detect_pair(request, Settings(output_dir=out), out)
    assert again.folder == first.folder and (again.folder / "item.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted([first.folder.name, other_run.name])
