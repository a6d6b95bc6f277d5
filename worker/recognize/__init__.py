"""Plate recognition: the text detector, our readers and PP-OCRv4's, CTC decoding, US plate
priors, our models (models/), search-region geometry, the pool of recognition processes, and
`platewatch eval` (the recognizer scored on labelled photos)."""
