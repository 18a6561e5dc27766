"""A stand-alone LSL outlet for tests that kill and restart a device mid-session.

python tests/lsl_outlet_process.py SOURCE_ID SRATE_HZ N_CHANNELS SECONDS
Pushes samples whose first channel counts samples, in 20 ms chunks, stamped with
``local_clock``; prints "ready" once the outlet exists.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pylsl


def main() -> None:
    source_id = sys.argv[1]
    srate, n_channels, seconds = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    info = pylsl.StreamInfo("restartable", "EEG", n_channels, srate, pylsl.cf_float32, source_id)
    channels = info.desc().append_child("channels")
    for c in range(n_channels):
        channels.append_child("channel").append_child_value("label", f"ch{c}")
    outlet = pylsl.StreamOutlet(info)
    print("ready", flush=True)
    start = pylsl.local_clock()
    sent = 0
    while pylsl.local_clock() - start < seconds:
        due = int((pylsl.local_clock() - start) * srate)
        if due > sent:
            n = due - sent
            data = np.zeros((n, n_channels), dtype=np.float32)
            data[:, 0] = np.arange(sent, due)
            stamps = start + np.arange(sent, due) / srate
            outlet.push_chunk(data, stamps.tolist())
            sent = due
        time.sleep(0.02)


if __name__ == "__main__":
    main()
