"""The bandit learners behind `games.learning.make_learner`: one player that repeatedly picks one of n actions and
is told only its own realised payoff (it never sees the others' actions nor the payoffs it did not get).

Every kind starts the same way: it plays each action once, in an order drawn from its seed ("uniform initial
exploration"), so that it has an estimate of every action's payoff before its own rule takes over; after that it
may still try a random action now and then, less and less often (`explore`, see `BanditLearner.act`). Payoffs have no
fixed scale, so each learner measures them against the spread it has seen so far (`span`: highest minus lowest
realised payoff, 1 until two differ); temperatures, step sizes and preferences are per that span.

- fictitious play: the running average of each action's realised payoffs stands in for its payoff against the others'
  empirical play; it plays a best response to those averages (ties broken by its seed). Its mixed strategy is the
  empirical frequency of its own play, the quantity fictitious play's convergence results are about.
- replicator: a mixed strategy moved by the exponential (Hedge) discretisation of the replicator equation,
  x <- x * exp(dt * v / span), renormalised, where v are recency-weighted payoff estimates; it samples its action.
- q-learning: stateless Q-values (recency-weighted averages with step size max(alpha, 1/n)) and a Boltzmann policy
  softmax(Q / (temperature * span)) that it samples.
- active inference: a categorical generative model with two outcomes, the best and the worst payoff seen so far; a
  realised payoff r counts as (r - lo) / span of a "best" outcome and the rest of a "worst" one. The hidden state is
  the arm that the action selects (the transition B is known: the action sets it); the likelihood A of outcomes in
  each state is learned as Dirichlet counts (a flat prior of one count per outcome, plus at most `memory` rounds of
  recency-weighted evidence, so that it follows opponents who change). Preferences C are log-probabilities
  log softmax(preference * (1, 0)) over (best, worst). Each action's expected free energy is
  G = risk + ambiguity - novelty, where risk = KL[A(.|a) || C], ambiguity = H[A(.|a)] and novelty is the expected
  information gain about A's Dirichlet parameters (the 1/2 (1/a_o - 1/sum a) approximation of Friston et al. 2017,
  "Active inference, curiosity and insight"); the policy is softmax(-precision * G). With one state per action
  risk + ambiguity is the cross-entropy of predicted outcomes against preferences: preference * P(worst) + const.
"""

from __future__ import annotations

import math

import numpy as np

from plurigrid.errors import UsageError

TIE_RTOL = 1e-12  # values within TIE_RTOL * (1 + largest |value|) of the best count as tied (rounding, not preference)


def softmax(z: np.ndarray) -> np.ndarray:
    """exp(z) normalised to sum to 1 (shifted by its maximum, so it cannot overflow)."""
    w = np.exp(z - z.max())
    return w / w.sum()


def exponential_step(x: np.ndarray, values: np.ndarray, step: float) -> np.ndarray:
    """One step of the replicator equation discretised as x <- x * exp(step * values), renormalised.

    To first order in `step` this is x + step * x * (values - x.values), the replicator's Euler step, but it keeps
    every strategy on its simplex for any step size and never turns a used action's probability negative.
    """
    w = x * np.exp(step * (values - values.max()))
    return w / w.sum()


def best_response(values: np.ndarray, rng: np.random.Generator) -> int:
    """An action of highest value, ties broken uniformly at random by `rng` (drawn only when there is a tie)."""
    top = values.max()
    ties = np.flatnonzero(values >= top - TIE_RTOL * (1.0 + np.abs(values).max()))
    return int(ties[0] if ties.size == 1 else rng.choice(ties))


def check_rate(where: str, name: str, value: float, *, upper: float = math.inf, closed_upper: bool = False) -> float:
    """`value` as a float in (0, upper) (or (0, upper]), else a UsageError naming `where` and `name`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {name}={value!r}: expected a number") from None
    if not (x > 0 and (x <= upper if closed_upper else x < upper)):
        bound = f"<= {upper:g}" if closed_upper else f"< {upper:g}" if math.isfinite(upper) else "finite"
        raise UsageError(f"{where}: {name}={value!r}: expected a number > 0 and {bound}")
    return x


class BanditLearner:
    """What every kind shares: its seeded Generator, the exploration order, per-action estimates and the payoff span.

    `estimate[a]` is the recency-weighted average of action a's realised payoffs (step size max(floor, 1/n_a), so
    the first payoff of an action is taken as it is; floor 0 gives the plain running average).
    """

    kind = ""
    explore = 0.0  # random actions after the first sweep (see `act`); 0: none, as against a fixed environment

    def __init__(self, n_actions: int, seed: int, *, floor: float) -> None:
        self.n_actions = n_actions
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(n_actions)
        self._floor = floor
        self.count = np.zeros(n_actions)
        self.estimate = np.zeros(n_actions)
        self._lo, self._hi = math.inf, -math.inf

    @property
    def exploring(self) -> bool:
        """Whether some action has not been played yet."""
        return bool((self.count == 0).any())

    @property
    def lo(self) -> float:
        """The lowest payoff realised so far (0 before any)."""
        return self._lo if math.isfinite(self._lo) else 0.0

    @property
    def span(self) -> float:
        """Highest minus lowest payoff realised so far; 1 until two payoffs differ."""
        spread = self._hi - self._lo
        return spread if math.isfinite(spread) and spread > 0 else 1.0

    def act(self) -> int:
        """The next untried action in the seeded order; then, with a probability that decays (explore * n / (n + t)
        after t more rounds: it never stops, but it sums to little), a uniformly random action, else the kind's own choice.

        Why the decaying exploration: the others learn too, so an action that paid badly once (against what they
        played then) may pay now; a learner that never tries it again can stay on a profile that is no equilibrium.
        """
        if self.exploring:
            return int(next(a for a in self._order if self.count[a] == 0))
        t = float(self.count.sum()) - self.n_actions
        if self.explore and self._rng.random() < self.explore * self.n_actions / (self.n_actions + t):
            return int(self._rng.integers(self.n_actions))
        return self._choose()

    def update(self, action: int, payoff: float) -> None:
        """Takes in the payoff realised by `action` (bandit feedback)."""
        if isinstance(action, bool) or not isinstance(action, int | np.integer) or not 0 <= action < self.n_actions:
            raise UsageError(f"{self.kind} learner: update(action={action!r}): expected an action in 0..{self.n_actions - 1}")
        r = float(payoff)
        if not math.isfinite(r):
            raise UsageError(f"{self.kind} learner: update(payoff={payoff!r}): expected a finite number")
        self.count[action] += 1
        self.estimate[action] += max(self._floor, 1.0 / self.count[action]) * (r - self.estimate[action])
        self._lo, self._hi = min(self._lo, r), max(self._hi, r)
        self._learned()

    def _learned(self) -> None:
        """What the kind does after each update (nothing by default)."""

    def _choose(self) -> int:
        """An action by sampling the kind's mixed strategy."""
        return int(self._rng.choice(self.n_actions, p=self.policy()))

    def policy(self) -> np.ndarray:
        raise NotImplementedError


class FictitiousPlayLearner(BanditLearner):
    """Best response to the running average payoff of each action; its strategy is its empirical frequency of play."""

    kind = "fictitious-play"

    def __init__(self, n_actions: int, seed: int) -> None:
        super().__init__(n_actions, seed, floor=0.0)

    def _choose(self) -> int:
        return best_response(self.estimate, self._rng)

    def policy(self) -> np.ndarray:
        total = self.count.sum()
        return self.count / total if total else np.full(self.n_actions, 1.0 / self.n_actions)


class ReplicatorLearner(BanditLearner):
    """A mixed strategy moved by the replicator equation on estimated payoffs (recency weight `alpha`)."""

    kind = "replicator"

    def __init__(self, n_actions: int, seed: int, *, dt: float = 0.5, alpha: float = 0.1) -> None:
        super().__init__(n_actions, seed, floor=check_rate(self.kind, "alpha", alpha, upper=1.0, closed_upper=True))
        self._dt = check_rate(self.kind, "dt", dt)
        self._x = np.full(n_actions, 1.0 / n_actions)

    def _learned(self) -> None:
        if not self.exploring:
            self._x = exponential_step(self._x, self.estimate, self._dt / self.span)

    def policy(self) -> np.ndarray:
        return self._x.copy()


class QLearner(BanditLearner):
    """Stateless Q-learning with a Boltzmann policy; uniform until every action has been tried."""

    kind = "q-learning"

    def __init__(self, n_actions: int, seed: int, *, alpha: float = 0.1, temperature: float = 0.05) -> None:
        super().__init__(n_actions, seed, floor=check_rate(self.kind, "alpha", alpha, upper=1.0, closed_upper=True))
        self._temperature = check_rate(self.kind, "temperature", temperature)

    def policy(self) -> np.ndarray:
        if self.exploring:
            return np.full(self.n_actions, 1.0 / self.n_actions)
        return softmax(self.estimate / (self._temperature * self.span))


class ActiveInferenceLearner(BanditLearner):
    """Chooses by minimising expected free energy over a learned two-outcome likelihood (see the module docstring)."""

    kind = "active-inference"

    def __init__(self, n_actions: int, seed: int, *, precision: float = 16.0, preference: float = 4.0,
                 memory: float = 50.0) -> None:
        self._memory = check_rate(self.kind, "memory", memory)
        super().__init__(n_actions, seed, floor=1.0 / max(self._memory, 1.0))
        self._precision = check_rate(self.kind, "precision", precision)
        self._log_c = np.log(softmax(np.array([check_rate(self.kind, "preference", preference), 0.0])))

    def dirichlet(self) -> np.ndarray:
        """The Dirichlet counts of A, shape (n_actions, 2): one prior count per outcome plus the evidence for it."""
        best = np.clip((self.estimate - self.lo) / self.span, 0.0, 1.0)
        evidence = np.minimum(self.count, self._memory)
        return 1.0 + evidence[:, None] * np.stack([best, 1.0 - best], axis=1)

    def expected_free_energy(self) -> np.ndarray:
        """G(a) = risk + ambiguity - novelty for each action, in nats."""
        alpha = self.dirichlet()
        total = alpha.sum(axis=1, keepdims=True)
        predicted = alpha / total
        risk_plus_ambiguity = -(predicted * self._log_c).sum(axis=1)  # KL[q || C] + H[q] = cross-entropy
        novelty = (predicted * 0.5 * (1.0 / alpha - 1.0 / total)).sum(axis=1)
        return risk_plus_ambiguity - novelty

    def policy(self) -> np.ndarray:
        return softmax(-self._precision * self.expected_free_energy())


LEARNER_CLASSES: dict[str, type[BanditLearner]] = {
    cls.kind: cls for cls in (FictitiousPlayLearner, ReplicatorLearner, QLearner, ActiveInferenceLearner)
}
