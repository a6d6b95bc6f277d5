"""Getting frames from cameras: sources (stream, file, folder, snapshot), one capture thread per
camera with its motion gate and bounded queue, and the per-camera load watch."""
