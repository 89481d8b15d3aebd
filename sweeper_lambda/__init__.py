"""sweeper_lambda: the scheduled safety net (stops overdue tasks, reconciles lost events and slots, re-drives
stuck launches and reports, admits waiting runs; decision 100)."""
