"""Secure aggregation: the exact sum of the inputs that arrived, through dropouts at every round, while no single
masked input (or partial sum of them) gives a member's value away."""

import numpy as np
import pytest

from plurigrid.privacy.secagg import Aggregator, Member, SecAggError, Setup, aggregate, prg
from plurigrid.privacy.shamir import ShamirError, combine, split


def _values(ids, length, seed):
    rng = np.random.default_rng(seed)
    return {m: rng.integers(-(2**40), 2**40, length) for m in ids}  # Wh or micro-units, either sign


def test_100_members_with_10_percent_dropping_out_give_the_exact_sum():
    ids = [f"node{i:03d}" for i in range(100)]
    values = _values(ids, 3, 1)
    # ten drop out: two never advertise, three after advertising, three after sharing keys (their pair masks must be
    # taken out of everyone else's input), two after sending their input (they count, but do not help unmask)
    drop_after = dict(zip(ids[5::10], [-1, -1, 0, 0, 0, 1, 1, 1, 2, 2]))
    total, traffic = aggregate(Setup.of("feeder-7/interval-42", ids, length=3), values, drop_after)
    counted = [m for m in ids if drop_after.get(m, 4) >= 2]
    assert len(counted) == 92
    assert total.tolist() == np.sum([values[m] for m in counted], axis=0).tolist()
    assert traffic["up"][3] > 0 and all(b > 0 for b in traffic["up"])


@pytest.mark.parametrize("n", [3, 10, 101, 400])
def test_the_sum_is_exact_without_dropouts_on_full_and_sparse_graphs(n):
    ids = [f"m{i}" for i in range(n)]
    values = _values(ids, 2, n)
    setup = Setup.of("s", ids, length=2)
    assert setup.neighbours == (n - 1 if n <= 100 else 2 * int(np.ceil(1.5 * np.log2(n))))
    total, _ = aggregate(setup, values)
    assert total.tolist() == np.sum(list(values.values()), axis=0).tolist()


def test_what_the_aggregator_sees_hides_each_value():
    ids = [f"m{i}" for i in range(6)]
    values = {m: np.array([1000 * (i + 1)]) for i, m in enumerate(ids)}
    setup = Setup.of("s", ids)
    members = {m: Member(setup, m, values[m]) for m in ids}
    agg = Aggregator(setup)
    agg.collect_keys([m.advertise() for m in members.values()])
    inbox = agg.route_shares([m.share_keys(agg.keys_for(m.id)) for m in members.values()])
    inputs = [members[m].masked_input(inbox[m]) for m in ids]
    agg.collect_inputs(inputs)
    masked = {m: agg.masked[m] for m in ids}
    for m in ids:  # a masked input is its value plus pads the aggregator cannot compute
        assert int(masked[m][0]) != int(values[m][0])
    partial = sum(int(masked[m][0]) for m in ids[:5]) % 2**64  # the pair masks cancel only over everyone
    assert partial != sum(int(values[m][0]) for m in ids[:5])
    answers = [members[m].unmask(agg.received_for(m)) for m in ids]
    assert all(not a["masks"] for a in answers)  # nobody dropped: no mask key is ever revealed
    assert agg.unmask(answers).tolist() == [21000]
    with pytest.raises(SecAggError, match="^m0: already answered round 3 of s$"):
        members["m0"].unmask(agg.received_for("m0"))  # a second answer could reveal both secrets of a neighbour
    fresh = {m: Member(setup, m, values[m]) for m in ids[:2]}
    fresh["m0"].advertise()
    fresh["m0"].share_keys(agg.keys_for("m0"))
    with pytest.raises(SecAggError, match="^m0: only 0 neighbours shared keys with me, fewer than the threshold 3$"):
        fresh["m0"].masked_input({})  # an input padded only by its self mask would be unmasked with the self seed
    with pytest.raises(SecAggError, match="^m1: not ready for round 2 of s$"):
        fresh["m1"].masked_input(inbox["m1"])


def test_too_many_dropouts_are_refused_with_a_reason():
    ids = [f"m{i}" for i in range(10)]
    with pytest.raises(SecAggError, match=r"^s: only 4 members sent a masked input, fewer than the threshold 5$"):
        aggregate(Setup.of("s", ids), _values(ids, 1, 0), dict.fromkeys(ids[:6], 1))
    with pytest.raises(SecAggError, match=r"^s: only 4 shares of m\d's secret came back, 5 needed"):
        aggregate(Setup.of("s", ids), _values(ids, 1, 0), dict.fromkeys(ids[:5], 2) | {ids[5]: 1})


def test_setup_and_members_check_their_input():
    with pytest.raises(SecAggError, match="^secure aggregation needs at least 3 members, got 2$"):
        Setup.of("s", ["a", "b"])
    with pytest.raises(SecAggError, match="^neighbours: expected n - 1 = 9, or an even number from 2 below it, got 3$"):
        Setup.of("s", [str(i) for i in range(10)], neighbours=3)
    ring = Setup.of("s", [f"m{i}" for i in range(10)], neighbours=4)
    pairs = {(m, o) for m in ring.members for o in ring.neighbours_of(m)}
    assert ring.threshold == 3 and all(len(ring.neighbours_of(m)) == 4 for m in ring.members)
    assert all((o, m) in pairs for m, o in pairs)  # pairing is mutual
    other = Setup.of("t", [f"m{i}" for i in range(10)], neighbours=4)  # the ring is drawn from the session
    assert {(m, o) for m in other.members for o in other.neighbours_of(m)} != pairs
    with pytest.raises(SecAggError, match=r"^m1: expected 2 numbers, got shape \(3,\)$"):
        Member(Setup.of("s", ["m0", "m1", "m2"], length=2), "m1", np.zeros(3))


def test_shamir_recovers_from_any_threshold_shares_and_not_from_fewer():
    secret = bytes(range(32))
    xs = list(range(1, 8))
    shares = list(zip(xs, split(secret, xs, 4)))
    assert combine(shares[3:], 4) == secret and combine(shares[::2], 4) == secret
    with pytest.raises(ShamirError, match="^need 4 shares from distinct holders, got 3$"):
        combine(shares[:3], 4)
    assert prg(b"k" * 32, 4).tolist() == prg(b"k" * 32, 4).tolist() != prg(b"j" * 32, 4).tolist()
