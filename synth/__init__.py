"""Rendered plates, street scenes and camera footage with known plates: for training, tests, the
demo and the benchmarks only. The running worker never imports this package (tests/test_boundaries.py).

`synth.scenes` (clean canonical plates, scenes, video and snapshot folders) is the package's face
and is re-exported here; `synth.plategen` and its drawing modules render the varied training plates.
"""

from synth.scenes import (
    STYLES, PlateStyle, Vehicle, VehiclePass, main, make_scene, render_plate, write_images, write_video,
)

__all__ = ["STYLES", "PlateStyle", "Vehicle", "VehiclePass", "main", "make_scene", "render_plate",
           "write_images", "write_video"]
