package wsgate

// Hooks for the external tests.

// ParallelFanoutMin is the open-connection count from which a broadcast
// is split over goroutines.
const ParallelFanoutMin = parallelFanoutMin

// SetTopicSplitMin sets the subscriber count from which a topic push is
// split over goroutines, so a test can split a push to a few.
func SetTopicSplitMin(s *Server, n int) { s.splitMin = n }

// AddOpenConns adds n to the gauge of open connections (MaxConns and the
// fanout split read it), so a test can make a few connections look many.
func AddOpenConns(s *Server, n int64) { s.ctr.open.Add(n) }
