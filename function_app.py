"""The Azure Functions entry point: build the app and register every function. Nothing else."""

import azure.durable_functions as df

from activities.plan import bp as plan_bp

app = df.DFApp()
app.register_functions(plan_bp)
