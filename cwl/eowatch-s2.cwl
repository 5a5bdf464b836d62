# OGC EO Application Package (OGC 20-089) of eowatch's Sentinel-2 change detection.
# Inputs are staged-in STAC catalogues (a folder with catalog.json -> one Item -> band
# assets); the output is a STAC catalogue (catalog.json -> the product Item -> the
# change map COG, statistic COG, polygons, quicklook), ready for stage-out.
# Run locally:  cwltool cwl/eowatch-s2.cwl#eowatch-s2 --before CAT1 --after CAT2
# (build input catalogues from band folders with `eowatch stac-wrap FOLDER --out CAT`).
cwlVersion: v1.0
$namespaces:
  s: https://schema.org/
s:softwareVersion: 0.1.0
s:name: eowatch-s2
s:description: Sentinel-2 change detection between two dates (learned model on IR-MAD, IR-MAD, CVA, dNBR, NDWI presets).
s:keywords: [change detection, Sentinel-2, IR-MAD, STAC]
s:license: https://spdx.org/licenses/Apache-2.0
$graph:
  - class: Workflow
    id: eowatch-s2
    label: eowatch Sentinel-2 change detection
    doc: >-
      Detects changes between two Sentinel-2 acquisitions (L1C or L2A) given as STAC
      catalogues and writes a change map COG (0 no change, 1..254 change classes,
      255 no valid data), a per-pixel statistic COG, change polygons (GeoJSON,
      FlatGeobuf), a quicklook and a STAC Item with full provenance.
    inputs:
      before:
        type: Directory
        label: Earlier date
        doc: STAC catalogue (catalog.json) holding the earlier acquisition's Item and band assets.
      after:
        type: Directory
        label: Later date
        doc: STAC catalogue (catalog.json) holding the later acquisition's Item and band assets.
      aoi:
        type: string?
        label: Area of interest
        doc: GeoJSON text, WKT or bbox minlon,minlat,maxlon,maxlat (default, the common footprint).
      preset:
        type: string
        default: s2-learned
        label: Detection preset
        doc: s2-learned, s2-imad, s2-cva, s2-burn or s2-water (`eowatch presets --sensor s2`).
      params:
        type: string[]?
        label: Preset parameters
        doc: name=value pairs, e.g. alpha=0.01, min_area_m2=500.
    outputs:
      results:
        type: Directory
        label: Change products
        doc: STAC catalogue (catalog.json) linking the product Item.
        outputSource: detect/results
    steps:
      detect:
        run: "#eowatch-s2-detect"
        in:
          before: before
          after: after
          aoi: aoi
          preset: preset
          params: params
        out: [results]

  - class: CommandLineTool
    id: eowatch-s2-detect
    label: eowatch detect (Sentinel-2)
    # The image built by the repository's Dockerfile. A hint, not a requirement: ADES runners
    # (Calrissian, ZOO-Project, cwltool) run the tool in it all the same, and the package can
    # also run without a container (`cwltool --no-container`, eowatch on PATH), which cwltool
    # refuses for a DockerRequirement listed under requirements.
    hints:
      DockerRequirement:
        dockerPull: eowatch:0.1.0
    requirements:
      ResourceRequirement:
        coresMin: 1
        coresMax: 2
        ramMin: 2048
        ramMax: 4096
    baseCommand: [eowatch, detect]
    arguments: [--out, ., --stac-catalog, --quiet]
    inputs:
      before:
        type: Directory
        inputBinding: {prefix: --before}
      after:
        type: Directory
        inputBinding: {prefix: --after}
      aoi:
        type: string?
        inputBinding: {prefix: --aoi}
      preset:
        type: string
        inputBinding: {prefix: --preset}
      params:
        type:
          - "null"
          - type: array
            items: string
            inputBinding: {prefix: --param}
        inputBinding: {}  # one "--param name=value" per item
    outputs:
      results:
        type: Directory
        outputBinding: {glob: .}
