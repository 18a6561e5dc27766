"""Shared fixtures: small real data (simulated subjects) and the demo feature spec."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# LSL on loopback only: resolve streams of this machine, never a lab's network.
# liblsl reads this file when first used, so it is set before anything imports pylsl.
# (With the machine scope alone, the LabRecorder bindings cannot subscribe to streams
# of their own process; naming this machine as the known peer fixes that.) A known
# peer is asked on the ports of the port range only: group tests open more than the
# 16 outlets the default range of 32 ports holds, so the range is wider.
_LSL_CFG = Path(tempfile.gettempdir()) / "helo-tests-lsl_api.cfg"
_LSL_CFG.write_text(
    "[multicast]\nResolveScope = machine\n[lab]\nKnownPeers = {127.0.0.1}\n"
    "[ports]\nPortRange = 512\n[log]\nlevel = -2\n"
)
os.environ.setdefault("LSLAPICFG", str(_LSL_CFG))

import pytest  # noqa: E402

from helo.models.datasets.synthetic_windows import (  # noqa: E402
    SyntheticConfig,
    make_synthetic_dataset,
    synthetic_spec,
)

TINY = SyntheticConfig(n_subjects=4, trials_per_subject=3, trial_s=20.0, hop_s=1.0, seed=5)


@pytest.fixture(scope="session")
def spec():
    return synthetic_spec()


@pytest.fixture(scope="session")
def tiny_dataset():
    """4 simulated subjects x 3 trials x 16 windows, all four modalities."""
    return make_synthetic_dataset(TINY)


@pytest.fixture(scope="session")
def live_run(tmp_path_factory):
    """A 9-second live session of the demo model on the synthetic device, recorded to XDF
    with LabRecorder (streams, true distribution and predictions)."""
    import uuid

    from helpers import read_prediction_outlet, session_config

    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    out = tmp_path_factory.mktemp("live")
    memory = MemorySink()
    with SyntheticDevice(source_prefix=f"test-{uuid.uuid4().hex[:8]}") as device:
        config = session_config(
            device,
            duration_s=9.0,
            jsonl=out / "p.jsonl",
            csv=out / "p.csv",
            record=out / "session.xdf",
            truth_stream=f"{device.source_prefix}-truth",
        )
        session = LiveSession(config, subscribers=[memory])
        with session:
            labels = read_prediction_outlet(session)
            session.run()
            health = session.health()
    assert session.pipeline is not None
    return {
        "phase": session.pipeline.scheduler.phase,
        "records": memory.records,
        "out": out,
        "health": health,
        "labels": labels,
        "latency": session.latency.summary(),
        "xdf": out / "session.xdf",
    }


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """The app's main window, shown offscreen, its session (if any) stopped after."""
    from helo.ui.main_window import MainWindow

    monkeypatch.setenv("HELO_PERSONAL_DIR", str(tmp_path / "personal"))
    win = MainWindow(timeline_s=30.0)
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.runner is not None:
        win.runner.stop()
