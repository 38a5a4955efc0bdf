"""Evaluation: CER, exact rate, valid JSON and degeneration of models side by side."""
