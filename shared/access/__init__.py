"""Who may call the API: clients, keys and their secrets, signature checks, rate budgets."""
