"""The group view of the desktop app, with real widgets (offscreen): records of several
participants, made directly, go into the main window the way the runtime's signal
delivers them; no session runs."""

from __future__ import annotations

import numpy as np
import pytest

from helo.models.datasets.synthetic import EMOTIONS
from helo.streamer.group import js_similarity
from helo.streamer.worker import PredictionRecord

MODALITIES = ("eeg", "gsr", "ppg", "face")
HOP_S = 0.25


def record(
    participant: str,
    index: int,
    rng: np.random.Generator,
    *,
    missing: tuple[str, ...] = (),
    predicted: bool = True,
    calibrating: bool = False,
) -> PredictionRecord:
    present = () if not predicted else tuple(m for m in MODALITIES if m not in missing)
    absent = MODALITIES if not predicted else missing
    return PredictionRecord(
        index=index,
        t_end=1000.0 + index * HOP_S,
        labels=EMOTIONS,
        distribution=rng.dirichlet(np.ones(len(EMOTIONS))) if predicted else None,
        present=present,
        missing=dict.fromkeys(absent, "no samples"),
        calibrating=calibrating,
        participant=participant,
    )


def feed_hops(window, hops: range, rng, **per_participant) -> dict[str, list[PredictionRecord]]:
    """Each hop, one record per participant, one after the other (as the runtime sends
    them); ``per_participant``: keyword arguments of :func:`record` for each."""
    sent: dict[str, list[PredictionRecord]] = {p: [] for p in per_participant}
    for index in hops:
        for participant, options in per_participant.items():
            made = record(participant, index, rng, **options)
            window.bridge.prediction.emit(made)
            sent[participant].append(made)
    return sent


def settle(qtbot, window) -> None:
    """One frame, after Qt has laid out and shown what changed."""
    window.redraw()
    qtbot.wait(30)
    window.redraw()
    qtbot.wait(30)


def pixel(image, point) -> str:
    return image.pixelColor(point).name()


def test_three_participants_get_tiles_health_top_emotion_and_a_clickable_detail(
    qtbot, window, tmp_path
):
    from PySide6 import QtCore

    from helo.ui.group_view import HEALTH_COLOURS, STRIPE_W

    rng = np.random.default_rng(3)
    # Arrival order is not name order: the tiles are sorted, the detail is the first seen.
    sent = feed_hops(
        window,
        range(12),
        rng,
        P02={"missing": ("face",)},
        P01={},
        P03={"predicted": False},
    )
    settle(qtbot, window)
    grid = window.group
    assert grid.isVisible()
    assert grid.participants == ("P01", "P02", "P03")
    assert grid.selected_participant == "P02"
    for participant, records in sent.items():
        newest = records[-1]
        tile = grid.tile(participant)
        assert tile.record is newest
        if newest.distribution is None:
            assert tile.top_text == "no prediction"
        else:
            top = int(np.argmax(newest.distribution))
            assert tile.top_text == f"{EMOTIONS[top]} {newest.distribution[top]:.0%}"
    assert [grid.tile(p).health for p in ("P01", "P02", "P03")] == ["green", "amber", "red"]

    # The health colours are painted: the stripe on each tile's left edge.
    image = grid.grab().toImage()
    for participant, health in (("P01", "green"), ("P02", "amber"), ("P03", "red")):
        rect = grid.tile_rect(participant)
        assert rect.width() > 60
        assert rect.height() > 40
        stripe = QtCore.QPoint(rect.left() + STRIPE_W // 2, rect.center().y())
        assert pixel(image, stripe) == HEALTH_COLOURS[health]

    # The detail view shows the first participant seen until a tile is clicked.
    np.testing.assert_allclose(window.bars.values, sent["P02"][-1].distribution)
    assert window.bars.headline.text().startswith("P02:")
    qtbot.mouseClick(grid, QtCore.Qt.MouseButton.LeftButton, pos=grid.tile_rect("P01").center())
    assert grid.selected_participant == "P01"
    np.testing.assert_allclose(window.bars.values, sent["P01"][-1].distribution)
    assert window.bars.headline.text().split()[1] == sent["P01"][-1].dominant
    # ... with that participant's history in the timeline (kept per participant)
    assert [t for t, _ in window.timeline.history] == [r.t_end for r in sent["P01"]]
    np.testing.assert_allclose(window.timeline.history[-1][1], sent["P01"][-1].distribution)
    # ... and from now on only their records reach the detail view.
    more = feed_hops(window, range(12, 14), rng, P01={}, P02={"missing": ("face",)})
    settle(qtbot, window)
    np.testing.assert_allclose(window.bars.values, more["P01"][-1].distribution)
    assert window.timeline.history[-1][0] == more["P01"][-1].t_end
    assert len(window.timeline.history) == 14
    image = grid.grab().toImage()
    selected = grid.tile_rect("P01")
    assert pixel(image, QtCore.QPoint(selected.center().x(), selected.top() + 2)) == "#1f3fbf"

    shot = tmp_path / "group.png"
    assert window.grab().save(str(shot))
    assert shot.stat().st_size > 10_000


def test_the_summary_is_the_mean_and_agreement_of_the_participants_with_a_prediction(qtbot, window):
    rng = np.random.default_rng(5)
    sent = feed_hops(window, range(4), rng, P01={}, P02={}, P03={"predicted": False}, P04={})
    settle(qtbot, window)
    summary = window.group.summary
    assert summary is not None
    predicted = np.stack([sent[p][-1].distribution for p in ("P01", "P02", "P04")])
    assert summary.predicted == 3
    assert summary.participants == 4
    np.testing.assert_allclose(summary.mean, predicted.mean(axis=0))
    assert summary.agreement == pytest.approx(js_similarity(predicted))


def test_a_participant_without_records_for_3_s_turns_red_and_leaves_the_mean(qtbot, window):
    rng = np.random.default_rng(7)
    feed_hops(window, range(4), rng, P01={}, P02={}, P03={})
    settle(qtbot, window)
    assert {window.group.tile(p).health for p in ("P01", "P02", "P03")} == {"green"}
    # 3 s of record time is 12 hops: still green at 12, red after.
    feed_hops(window, range(4, 4 + 12), rng, P01={}, P02={})
    settle(qtbot, window)
    assert window.group.tile("P03").health == "green"
    feed_hops(window, range(16, 17), rng, P01={}, P02={})
    settle(qtbot, window)
    assert window.group.tile("P03").health == "red"
    assert window.group.summary.predicted == 2
    assert window.group.summary.participants == 3


def test_a_redraw_repaints_only_the_tiles_with_news(qtbot):
    from helo.ui.group_view import GroupGrid

    grid = GroupGrid()
    qtbot.addWidget(grid)
    grid.resize(900, 500)
    grid.show()
    rng = np.random.default_rng(11)
    names = [f"P{i:02d}" for i in range(1, 17)]
    for name in names:
        grid.add(record(name, 0, rng, calibrating=name == "P05"))
    assert grid.participants == ()  # stored only, drawn at the next redraw
    assert grid.redraw() == names
    assert grid.redraw() == []
    grid.add(record("P07", 1, rng))
    assert grid.redraw() == ["P07"]
    assert grid.tile("P05").calibrating
    assert not grid.tile("P07").calibrating
    grid.set_personal({"P07"})  # the session runs P07's personal model
    assert grid.title("P07") == "P07 (personal)"
    assert grid.title("P05") == "P05"
    grid.grab()  # painted with it
    # 16 tiles: 4 x 4, inside the widget, none overlapping
    rects = [grid.tile_rect(n) for n in names]
    assert len({r.left() for r in rects}) == 4
    assert len({r.top() for r in rects}) == 4
    for i, rect in enumerate(rects):
        assert grid.rect().contains(rect)
        assert not any(rect.intersects(other) for other in rects[i + 1 :])


def test_a_one_person_session_keeps_the_grid_hidden(qtbot, window):
    rng = np.random.default_rng(13)
    sent = feed_hops(window, range(6), rng, **{"": {}})
    settle(qtbot, window)
    assert window.group.isHidden()
    assert window.group.participants == ()
    newest = sent[""][-1]
    np.testing.assert_allclose(window.bars.values, newest.distribution)
    assert window.bars.headline.text().split()[0] == newest.dominant
    assert len(window.timeline.history) == 6
