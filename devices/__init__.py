"""Producers of LSL streams: synthetic physiology and face, webcam, hardware boards."""
