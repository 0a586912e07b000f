"""Client functions: what starts work in Azure. The sync timers (one full and one incremental per
feed) start orchestrations through shared/runs/starts.py; the maintenance timers deliver notifications
and run the retention sweep. They sit beside orchestrators/ and activities/, never inside them: they do
I/O (a durable client, the database), which orchestrators must not."""
