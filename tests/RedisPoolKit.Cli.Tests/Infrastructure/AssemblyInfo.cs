// Two cores shared with the servers under test.
[assembly: CollectionBehavior(MaxParallelThreads = 2)]
