"""The Gymnasium and PettingZoo environments: both pass their libraries' own checkers, run the engine's step with
the agents' actions clipped to what the devices can do, and pay rewards that are the bills the ledger settles."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import plurigrid
from plurigrid.errors import UsageError
from plurigrid.rl import FEATURES, MicroworldEnv, MicroworldParallelEnv


@pytest.fixture(scope="module")
def residential():
    return plurigrid.load("residential")


@pytest.mark.parametrize("agent", ["home01", ["home01", "home02", "home03"], None])
def test_gymnasium_env_passes_the_env_checker(residential, agent):
    env = MicroworldEnv(residential, agent=agent)
    check_env(env, skip_render_check=True)
    n = 12 if agent is None else len(agent) if isinstance(agent, list) else 1
    assert env.observation_space.shape == (n * len(FEATURES),)
    if agent == ["home01", "home02", "home03"]:  # home01: PV and battery; home02: EV; home03: battery
        assert env.action_labels == ["home01.price", "home01.battery", "home02.price", "home02.ev", "home03.price",
                                     "home03.battery"]


def test_pettingzoo_env_passes_the_parallel_api_test(residential):
    env = MicroworldParallelEnv(residential)
    parallel_api_test(env, num_cycles=200)
    assert env.possible_agents == [f"home{i:02d}" for i in range(1, 13)]
    assert env.action_labels("home11") == ["price", "battery", "ev"]


def test_an_episode_is_the_world_and_its_rewards_are_the_bills(residential):
    env = MicroworldEnv(residential, agent="home01")
    rng = np.random.default_rng(4)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(residential.steps)]
    episodes = []
    for _ in range(2):
        env.reset(seed=0)
        rewards, bills, soc = [], [], []
        for k, action in enumerate(actions):
            _, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            bills.append(info["bill_eur"])
            soc.append(env.driver.state.soc_kwh[0])
            assert terminated == (k == residential.steps - 1) and not truncated
        episodes.append(rewards)
        assert np.allclose(rewards[:-1], -np.array(bills[:-1]), atol=1e-12)  # no HVAC at home01: minus its bill
        kept_kwh = soc[-1] - residential.compiled.batteries.initial_kwh[0]  # and at the end, the energy it kept
        assert rewards[-1] == pytest.approx(-bills[-1] + kept_kwh * residential.compiled.export_eur_per_kwh[95], abs=1e-12)
        assert 0.0 <= min(soc) and max(soc) <= 10.0 + 1e-9  # actions clip to the battery's room
    assert episodes[0] == episodes[1]  # the same actions give the same episode
    plain = MicroworldEnv(residential, agent="home01", store_value=None)
    plain.reset(seed=0)
    assert [plain.step(a)[1] for a in actions][-1] == pytest.approx(-bills[-1], abs=1e-12)
    with pytest.raises(UsageError, match="^store_value: expected one of export, import, a number of EUR per kWh, or None; "
                                         "got 'free'$"):
        MicroworldEnv(residential, agent="home01", store_value="free")


def test_ev_charging_can_be_delayed_but_never_stranded(residential):
    env = MicroworldParallelEnv(residential)
    env.reset(seed=0)
    while env.agents:
        env.step({a: -np.ones(env.action_space(a).shape, dtype=np.float32) for a in env.agents})  # as late and little as allowed
    assert env.driver.state.ev_unmet_kwh.sum() == 0.0


def test_welfare_reward_is_the_community_s_and_actions_move_the_market(residential):
    env = MicroworldParallelEnv(residential, reward="welfare")
    env.reset(seed=0)
    total = {}
    for k in range(48):
        price = 1.0 if k % 2 else -1.0
        _, rewards, _, _, infos = env.step({a: np.full(env.action_space(a).shape, price, dtype=np.float32) for a in env.agents})
        assert len(set(rewards.values())) == 1
        bills = sum(i["bill_eur"] for i in infos.values())
        assert rewards["home01"] == pytest.approx(-bills, abs=1e-9)
        total[k] = bills
    assert len(set(np.round(list(total.values()), 6))) > 10


def test_gymnasium_make_and_bad_agents():
    env = gymnasium.make("plurigrid/Microworld-v0", world="hello", agent=None)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    with pytest.raises(UsageError, match="^agent: no participant 'home13' in residential; expected some of home01, "):
        MicroworldEnv("residential", agent="home13")
    with pytest.raises(UsageError, match="^reward: unknown reward 'profit'; expected one of bill, welfare$"):
        MicroworldEnv("residential", agent="home01", reward="profit")
    env = MicroworldParallelEnv("residential", participants=["home01", "home02"])
    env.reset()
    with pytest.raises(UsageError, match="^actions: no action for agent 'home02'; every agent acts in every interval$"):
        env.step({"home01": np.zeros(2, dtype=np.float32)})


def test_bad_actions_stepping_past_the_end_and_agents_the_opf_would_override_are_refused(residential):
    env = MicroworldEnv(residential, agent="home01")
    env.reset(seed=0)
    with pytest.raises(UsageError, match=r"^action: home01 expects 2 finite numbers \(price, battery\), got \[nan, 0.0\]$"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    for _ in range(residential.steps):
        env.step(np.zeros(2, dtype=np.float32))
    with pytest.raises(UsageError, match=r"^step after the episode's last interval \(96\): call reset\(\) first$"):
        env.step(np.zeros(2, dtype=np.float32))
    with pytest.raises(UsageError, match="^agent: under opf, home04's truthful strategy hands its devices to the clearing; "):
        MicroworldEnv("residential", agent=["home01", "home04"], mechanism="opf")
    assert MicroworldEnv("residential", agent="home01", mechanism="opf").action_labels == ["home01.price", "home01.battery"]
