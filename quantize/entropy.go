package quantize

import "math"

// QuantBins is the number of levels the entropy search quantizes a
// candidate range into: 128, the levels of one sign of int8.
const QuantBins = 128

// entropyThreshold returns the |x| threshold that minimises KL(P‖Q), where
// P is the histogram of |x| up to the threshold with the clipped tail added
// to its last bin, and Q is that histogram (without the tail) merged into
// QuantBins levels and spread back evenly over the bins P has values in.
// Candidates are every bin edge from QuantBins bins up to the last
// non-empty bin: TensorRT's calibrator (Migacz 2017), ORT's "entropy".
func (s *Stats) entropyThreshold() float64 {
	half := HistBins / 2
	abs := make([]float64, half)
	for j := range abs {
		abs[j] = float64(s.Hist[half+j] + s.Hist[half-1-j])
	}
	last := 0
	for j, c := range abs {
		if c > 0 {
			last = j + 1
		}
	}
	w := s.width()
	if last <= QuantBins {
		return float64(last) * w
	}
	suffix := make([]float64, half+1) // suffix[i] = Σ abs[i:]
	for j := half - 1; j >= 0; j-- {
		suffix[j] = suffix[j+1] + abs[j]
	}
	best, bestKL := last, math.Inf(1)
	p := make([]float64, half)
	q := make([]float64, half)
	for i := QuantBins; i <= last; i++ {
		copy(p, abs[:i])
		p[i-1] += suffix[i]
		for k := range QuantBins {
			a, b := k*i/QuantBins, (k+1)*i/QuantBins
			var sum, nz float64
			for j := a; j < b; j++ {
				sum += abs[j]
				if abs[j] > 0 {
					nz++
				}
			}
			for j := a; j < b; j++ {
				q[j] = 0
				if abs[j] > 0 {
					q[j] = sum / nz
				}
			}
		}
		if kl := klDivergence(p[:i], q[:i]); kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return float64(best) * w
}

// klDivergence is KL(p‖q) of two histograms, each normalised to sum 1.
// A bin where p has mass and q has none (the clipped tail's bin, when the
// unclipped histogram is empty there) costs as if q held 1e-10 of the mass.
func klDivergence(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	var kl float64
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi := p[i] / sp
		qi := math.Max(q[i]/sq, 1e-10)
		kl += pi * math.Log(pi/qi)
	}
	return kl
}
