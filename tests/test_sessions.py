"""The simulator's sessions room in process: who may speak for a robot (hello, epochs, order)
and each agent's beacon budget."""

import pytest

from swarmcover.protocol import ScheduleReport
from swarmcover.simulator.sessions import BEACON_BURST, Admission, Sessions

pytestmark = pytest.mark.unit

A, B = b"route-a", b"route-b"


def test_hello_epochs_and_connections():
    s = Sessions(2)
    assert s.hello(0, 7, A, epoch=5, seq=1, wall=1.0, silent=False) is Admission.JOINED
    assert s.routes[7] == A and s.cmd_tick[0] == -1 and s.last_command_wall[0] == 1.0
    assert (
        s.hello(0, 7, B, epoch=5, seq=2, wall=2.0, silent=False) is Admission.REFUSED
    )  # same epoch, other link
    assert s.hello(0, 7, A, epoch=4, seq=3, wall=2.0, silent=False) is Admission.REFUSED  # an older epoch
    assert s.hello(0, 7, A, epoch=5, seq=3, wall=2.0, silent=False) is Admission.REPEATED  # nothing to do
    assert s.hello(0, 7, A, epoch=5, seq=4, wall=3.0, silent=True) is Admission.RECOVERED  # silent, alive
    assert s.hello(0, 7, A, epoch=5, seq=4, wall=3.0, silent=True) is Admission.REPEATED  # not a newer seq
    assert s.hello(0, 7, B, epoch=6, seq=0, wall=4.0, silent=False) is Admission.REJOINED  # restarted
    assert s.routes[7] == B and s.epochs[7] == 6


def test_messages_must_come_in_order_from_the_owner():
    s = Sessions(1)
    s.hello(0, 3, A, epoch=9, seq=10, wall=0.0, silent=False)
    assert s.in_order(3, A, 9, 11) and not s.in_order(3, A, 9, 11)  # a replay
    assert not s.in_order(3, B, 9, 12) and not s.in_order(3, A, 8, 12) and s.in_order(3, A, 9, 12)
    s.bye(3)
    assert not s.in_order(3, A, 9, 13)


def test_a_schedule_restart_is_a_new_epoch_after_the_first():
    s = Sessions(1)
    assert not s.report_schedule(0, ScheduleReport(epoch=0, stage=0, age=0.0, cause="start"))
    assert not s.report_schedule(0, ScheduleReport(epoch=0, stage=2, age=5.0, cause="start"))
    assert s.report_schedule(0, ScheduleReport(epoch=1, stage=0, age=0.0, cause="losses"))
    assert (s.schedule_epoch[0], s.schedule_stage[0], s.schedule_cause[0]) == (1, 0, "losses")


def test_beacons_one_a_tick_with_a_burst():
    s = Sessions(1)
    took = [s.admit_beacon(0, tick=1, wall=0.0, period=None) for _ in range(BEACON_BURST + 5)]
    assert sum(took) == BEACON_BURST  # the saved burst, then nothing more this tick
    assert s.admit_beacon(0, tick=2, wall=0.0, period=None) and not s.admit_beacon(0, 2, 0.0, None)
    # in real time a tick period of wall time also earns a token (beacons queued behind a stall)
    r = Sessions(1)
    assert sum(r.admit_beacon(0, 0, 0.0, period=0.1) for _ in range(20)) == BEACON_BURST
    assert sum(r.admit_beacon(0, 0, 0.35, period=0.1) for _ in range(20)) == 3
    assert sum(r.admit_beacon(0, 0, 5.0, period=0.1) for _ in range(20)) == 10  # at most a second's worth
