"""The parts of the instructor's review window (``app.review_window``): shared widgets and the
replay timeline, the window's layout, the attempt pane and the sign-off pane. What they show is
computed in ``scenarios.records.review`` and ``scenarios.records.queries``, without Qt."""
