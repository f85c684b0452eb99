package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// metaVersion is the first byte of a node's metadata. A node that changes
// the encoding bumps it; a member whose metadata has a version this node does
// not know gets a MetaErr and is never an owner. metaVersionFunctions is the
// same encoding followed by the node's function filter (functionFilterSize
// bytes): a node that runs only some functions says which.
const (
	metaVersion          = 1
	metaVersionFunctions = 2
)

// maxQueues bounds the queue count a decoder accepts, so that a corrupt
// count cannot make it allocate much.
const maxQueues = 256

// nodeMeta is what a node tells the others about itself through memberlist's
// node metadata (at most memberlist.MetaMaxSize bytes).
type nodeMeta struct {
	RemoteAddr string
	Queues     []string
	// Functions, when not nil, filters the functions the node runs.
	Functions *FunctionFilter
}

// encodeMeta encodes m as: version byte, then RemoteAddr, then the number of
// queues as a uvarint and each queue, every string as a uvarint length and
// its bytes.
func encodeMeta(m nodeMeta) ([]byte, error) {
	if len(m.Queues) > maxQueues {
		return nil, fmt.Errorf("%d queues, more than %d", len(m.Queues), maxQueues)
	}
	buf := []byte{metaVersion}
	if m.Functions != nil {
		buf[0] = metaVersionFunctions
	}
	buf = appendString(buf, m.RemoteAddr)
	buf = binary.AppendUvarint(buf, uint64(len(m.Queues)))
	for _, q := range m.Queues {
		buf = appendString(buf, q)
	}
	if m.Functions != nil {
		buf = append(buf, m.Functions[:]...)
	}
	return buf, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodeMeta decodes what encodeMeta encoded. It returns an error, never
// panics, on anything else: an unknown version, a truncated field, a varint
// longer than needed or trailing bytes.
func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) == 0 {
		return nodeMeta{}, errors.New("node metadata is empty")
	}
	if b[0] != metaVersion && b[0] != metaVersionFunctions {
		return nodeMeta{}, fmt.Errorf("node metadata version %d is not %d or %d", b[0], metaVersion, metaVersionFunctions)
	}
	d := metaDecoder{b: b[1:]}
	var m nodeMeta
	m.RemoteAddr = d.string("remote address")
	n := d.uvarint("queue count")
	if d.err == nil && n > maxQueues {
		d.err = fmt.Errorf("node metadata has %d queues, more than %d", n, maxQueues)
	}
	for i := uint64(0); d.err == nil && i < n; i++ {
		m.Queues = append(m.Queues, d.string("queue name"))
	}
	if d.err == nil && b[0] == metaVersionFunctions {
		if len(d.b) < functionFilterSize {
			d.err = fmt.Errorf("node metadata: function filter needs %d bytes, %d left", functionFilterSize, len(d.b))
		} else {
			m.Functions = new(FunctionFilter)
			copy(m.Functions[:], d.b)
			d.b = d.b[functionFilterSize:]
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("node metadata has %d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nodeMeta{}, d.err
	}
	return m, nil
}

// metaDecoder reads fields from b until the first error, which it keeps.
type metaDecoder struct {
	b   []byte
	err error
}

func (d *metaDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("node metadata: %s is truncated or malformed", field)
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		// One encoding per value, so that equal metadata is equal bytes.
		d.err = fmt.Errorf("node metadata: %s is not a minimal varint", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *metaDecoder) string(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("node metadata: %s needs %d bytes, %d left", field, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
