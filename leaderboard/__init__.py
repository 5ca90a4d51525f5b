"""The leaderboard: reported rows beside reproduced ones, as tables and a static site."""
