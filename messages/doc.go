// Package messages holds the protobuf types of Stent: the messages actors
// exchange (within a node and across nodes over protoactor remote) and the
// records persisted as blobs (journal snapshots).
//
// It contains generated code only and imports nothing but protobuf.
// Regenerate after editing stent.proto (needs protoc and protoc-gen-go):
//
//	go generate ./messages
package messages

//go:generate protoc --go_out=. --go_opt=paths=source_relative stent.proto
