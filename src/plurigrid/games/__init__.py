"""Open games over microworlds: finite games and their equilibria, games whose payoffs come from simulation,
coalitions and learning dynamics (see docs/games.md)."""
