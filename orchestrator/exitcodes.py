"""Process exit codes, documented in docs/admin.md; cron wrappers rely on them."""
OK = 0
ERROR = 1              # the experiment failed, or the master hit an unrecoverable error
USAGE = 2              # bad command line, bad config, config changed incompatibly
ALREADY_RUNNING = 3    # another live master holds the experiment (cron: nothing to do)
NO_EXPERIMENT = 4      # admin command on a work directory with no experiment yet
LEASE_LOST = 5         # this master was taken over while running and stopped without writing
