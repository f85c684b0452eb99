package cluster

// functionFilterSize is the size in bytes of a FunctionFilter: it travels
// in the node's metadata, which memberlist caps at 512 bytes.
const functionFilterSize = 32

// functionHashes is how many bits of the filter each function sets.
const functionHashes = 3

// FunctionFilter is a Bloom filter of the names of the functions a node
// runs (256 bits, 3 hashes): placement sends an execution only to members
// whose filter may hold its function. A false positive (about 1 in 10 with
// 50 functions) places an execution on a node without its function, which
// gives it back for a node that has it; there are no false negatives.
type FunctionFilter [functionFilterSize]byte

// NewFunctionFilter returns the filter of names.
func NewFunctionFilter(names []string) *FunctionFilter {
	f := new(FunctionFilter)
	for _, n := range names {
		for _, bit := range functionBits(n) {
			f[bit/8] |= 1 << (bit % 8)
		}
	}
	return f
}

// MayHave reports whether the filter may hold name: false means surely not.
func (f *FunctionFilter) MayHave(name string) bool {
	for _, bit := range functionBits(name) {
		if f[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// functionBits returns the filter's bits for name: double hashing of a
// 64-bit FNV-1a mixed by fmix64.
func functionBits(name string) [functionHashes]uint {
	h := fmix64(weight("", name))
	h1, h2 := uint(h), uint(h>>32)|1
	var out [functionHashes]uint
	for i := range out {
		out[i] = (h1 + uint(i)*h2) % (functionFilterSize * 8)
	}
	return out
}
