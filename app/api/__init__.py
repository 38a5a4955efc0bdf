"""HTTP layer: thin routes over the OCR service."""
