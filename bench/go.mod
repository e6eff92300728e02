module github.com/shoal-sh/shoal/bench

go 1.26.8
