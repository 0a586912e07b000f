"""The search API (FastAPI): served by the Functions host in Azure and by `caratflow serve` locally."""
