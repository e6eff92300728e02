package proto

import oldrand "math/rand"

type oldRand = oldrand.Rand

func newOldRand(seed int64) *oldRand { return oldrand.New(oldrand.NewSource(seed)) }
