"""The Azure Functions entry point: build the app and register every function. Nothing else."""

import azure.durable_functions as df

from activities.operations import bp as operations_activities_bp
from activities.pricing import bp as pricing_activities_bp
from activities.sync import bp as sync_activities_bp
from api.functions import bp as http_bp
from orchestrators.operations import bp as operations_bp
from orchestrators.pricing import bp as pricing_bp
from orchestrators.sync_run import bp as sync_orchestrators_bp
from triggers.maintenance import bp as maintenance_bp
from triggers.timers import bp as timers_bp

app = df.DFApp()
for blueprint in (
    sync_activities_bp,
    operations_activities_bp,
    pricing_activities_bp,
    sync_orchestrators_bp,
    operations_bp,
    pricing_bp,
    timers_bp,
    maintenance_bp,
    http_bp,
):
    app.register_functions(blueprint)
