"""The driver's side of a sweep: the run loop, the executor that runs trials on Ray,
and the resource shapes that place them. Nothing here runs inside a worker."""
