"""The Python back-end: turns the model into the generated package's source."""
