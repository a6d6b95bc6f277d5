"""What one image's plates look like to the caller: Plate Recognizer's Snapshot API answer, or
CodeProject.AI's ALPR answer, from the same reads.

Plate Recognizer fields we cannot measure keep their documented shape with a score of 0: the
region (the caller's first `regions` hint, else "us") and the vehicle (type "Unknown"; its box is
the rear of the vehicle around the plate, as the worker crops it). `dscore` (their detector's
score) is the read's confidence: our detector's score is not kept apart from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from worker.colour import vehicle_colour
from worker.track import BoxT, Sighting, VehicleRead, make_view, vehicle_box, vote


@dataclass
class Found:
    """One plate in the image: the read as the worker would post it, and what the answer adds."""

    read: VehicleRead
    vehicle: BoxT
    colour: tuple[str, float] | None


def found_in(sightings: list[Sighting], image: np.ndarray, camera: str, captured_at: datetime) -> list[Found]:
    """Each sighting as a one-frame read (a snapshot shows each vehicle once), best first."""
    found = []
    for sighting in sightings:
        plate, confidence, candidates = vote([sighting])
        view = make_view(image, sighting.box, captured_at, sighting.crop)
        read = VehicleRead(camera, plate, confidence, candidates, frames=1, view=view)
        found.append(Found(read, vehicle_box(view.box, image.shape),
                           vehicle_colour(view.vehicle_crop, view.plate_in_vehicle)))
    return sorted(found, key=lambda f: -f.read.confidence)


def corners(box: BoxT) -> dict[str, int]:
    x, y, w, h = box
    return {"xmin": x, "ymin": y, "xmax": x + w, "ymax": y + h}


def plate_reader_answer(found: list[Found], *, processing_ms: float, timestamp: datetime, camera_id: str | None,
                        filename: str | None, region: str) -> dict:
    """Plate Recognizer's Snapshot API answer (POST /v1/plate-reader/)."""
    results = []
    for f in found:
        read = f.read
        result = {
            "box": corners(read.view.box),
            "plate": read.plate.lower(),
            "region": {"code": region, "score": 0.0},
            "score": round(read.confidence, 3),
            "candidates": [{"plate": text.lower(), "score": round(score, 3)} for text, score in read.candidates],
            "dscore": round(read.confidence, 3),
            "vehicle": {"type": "Unknown", "score": 0.0, "box": corners(f.vehicle)},
        }
        if f.colour is not None:
            result["color"] = [{"color": f.colour[0], "score": f.colour[1]}]
        results.append(result)
    return {"processing_time": round(processing_ms, 3), "results": results, "filename": filename, "version": 1,
            "camera_id": camera_id, "timestamp": timestamp.isoformat().replace("+00:00", "Z")}


def alpr_answer(found: list[Found], *, inference_ms: float, process_ms: float) -> dict:
    """CodeProject.AI's ALPR answer (POST /v1/vision/alpr), as Blue Iris reads it."""
    predictions = []
    for f in found:
        x_min, y_min, x_max, y_max = corners(f.read.view.box).values()
        predictions.append({"confidence": round(f.read.confidence, 3), "label": f"Plate: {f.read.plate}",
                            "plate": f.read.plate, "x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max})
    plates = ", ".join(f.read.plate for f in found)
    return {"success": True, "message": f"Found {plates}" if found else "No plates found",
            "predictions": predictions, "count": len(predictions), "inferenceMs": round(inference_ms),
            "processMs": round(process_ms), "moduleId": "ALPR", "command": "alpr"}
