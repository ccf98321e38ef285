"""What went wrong, as the error code the pool and the client see."""


def is_out_of_memory(exc):
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(
        marker in text for marker in ("out of memory", "insufficient memory", "metal::malloc")
    )


def classify_load_error(exc):
    if is_out_of_memory(exc):
        return "out_of_memory"
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError) or "NotFound" in name or name == "HFValidationError":
        return "model_not_found"
    return "load_failed"
