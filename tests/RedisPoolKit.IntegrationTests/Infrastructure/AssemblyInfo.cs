// Two cores shared with the servers under test: more test threads only add scheduling noise to timing assertions.
[assembly: CollectionBehavior(MaxParallelThreads = 2)]
