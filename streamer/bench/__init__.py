"""The figures of ``streamer bench`` (docs/performance.md): compute, runtime, readers,
webcam. Each function returns plain figures and prints nothing; the command formats
them."""
