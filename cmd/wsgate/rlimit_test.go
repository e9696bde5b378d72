package main

import "testing"

func TestMaxConnsFor(t *testing.T) {
	cases := []struct {
		nofile  uint64
		pending int
		want    int
	}{
		{20000, 1024, 20000 - 1024 - fdOverhead},
		{1024, 1024, 1024 - 256}, // the reserve is at most a quarter
		{1 << 20, 1024, libraryMaxConns},
		{4096, 100, 4096 - 100 - fdOverhead},
	}
	for _, c := range cases {
		if got := maxConnsFor(c.nofile, c.pending); got != c.want {
			t.Errorf("maxConnsFor(%d, %d): got %d, want %d", c.nofile, c.pending, got, c.want)
		}
	}
}
