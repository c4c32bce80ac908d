"""Property: a loop restored from firmware/state.py's pack at any instants of a long random history
(boluses, PTM presses, suspends, silences, programs, refills old and new drug, primes, stalls,
occlusions, battery drops) runs exactly as the original: same strokes, events, tones, status, and
the same state packed again. tests/core/test_state.py has the lockstep rigs; `make soak` runs more."""

from hypothesis import given
from hypothesis import strategies as st
from test_state import HOUR, MIN, _lockstep, _release, _rx, _same_run, _set

from hal.channel import (
    CMD_BOLUS,
    CMD_CANCEL_BOLUS,
    CMD_PRIME,
    CMD_PROGRAM,
    CMD_REFILL,
    CMD_RESUME,
    CMD_SILENCE,
    CMD_SUSPEND,
)

END = 40 * HOUR

_rates = st.lists(st.sampled_from([300_000, 400_000, 500_000, 600_000, 700_000, 900_000]), min_size=4, max_size=4)
_action = st.one_of(
    st.tuples(st.just("press")),
    st.tuples(st.just("bolus"), st.sampled_from([5_000, 15_000, 60_000, 400_000, 1_500_000]),
              st.sampled_from([1, 5, 30, 240])),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("suspend")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("silence")),
    st.tuples(st.just("refill"), st.sampled_from([100_000, 1_000_000, 2_500_000]), st.sampled_from([2000, 1000, 3000])),
    st.tuples(st.just("prime"), st.sampled_from([0, 5, 10])),
    st.tuples(st.just("program"), _rates, st.integers(0, 23)),
    st.tuples(st.just("stall"), st.sampled_from([1, 10, 40])),
    st.tuples(st.just("block"), st.sampled_from([20, 90])),
    st.tuples(st.just("mv"), st.sampled_from([2700, 2500])),
)
_timed = st.tuples(st.integers(1, END // MIN - 1), _action)


def _script(actions):
    def script(rig):
        m = rig.motor
        for minute, act in actions:
            t = minute * MIN
            kind = act[0]
            if kind == "press":
                rig.at(t, rig.button.press)
            elif kind == "bolus":
                rig.send(t, (CMD_BOLUS, act[1], act[2]))
            elif kind == "cancel":
                rig.send(t, (CMD_CANCEL_BOLUS,))
            elif kind == "suspend":
                rig.send(t, (CMD_SUSPEND,))
            elif kind == "resume":
                rig.send(t, (CMD_RESUME,))
            elif kind == "silence":
                rig.send(t, (CMD_SILENCE,))
            elif kind == "refill":
                rig.send(t, (CMD_REFILL, act[1], act[2]))
            elif kind == "prime":
                rig.send(t, (CMD_PRIME, act[1]))
            elif kind == "program":
                rig.send(t, (CMD_PROGRAM, _rx(act[1], act[2] * HOUR, 30_000)))
            elif kind == "stall":
                rig.at(t, _set(m, "stalled", True))
                rig.at(t + act[1] * MIN, _set(m, "stalled", False))
            elif kind == "block":
                rig.at(t, _set(m, "blocked", True))
                rig.at(t + act[1] * MIN, _release(m))
            else:
                rig.at(t, _set(rig.adc, "mv", act[1]))

    return script


def _make(weekday, hour):
    def make():
        from fakes_hal import Rig

        from firmware.prescription import PumpParams

        return Rig(PumpParams(internal_path_nl=100_000, catheter_cm=10),
                   _rx([700_000, 400_000, 900_000, 600_000]), volume_nl=3_000_000, weekday=weekday,
                   time_of_day_ms=hour * HOUR)

    return make


@given(actions=st.lists(_timed, max_size=25), snaps=st.lists(st.integers(1, END // 1000 - 1), min_size=1, max_size=12,
                                                            unique=True),
       weekday=st.integers(0, 6), hour=st.integers(0, 23))
def test_restored_at_random_instants_of_a_random_history_runs_as_the_original(actions, snaps, weekday, hour):
    a, b, packs = _lockstep(_make(weekday, hour), _script(actions), sorted(s * 1000 for s in snaps), END)
    _same_run(a, b)
