"""The paper's mixture-of-Gaussians experiment: `gaussians` (pure numerics) and `report` (table, HTML page).

forgetbench simulate --seeds 5 --out reports/simulate.html
"""
