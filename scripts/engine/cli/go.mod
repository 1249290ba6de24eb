// Builds the Pulumi CLI from its Go module: pkg/v3's own go.mod has replace
// lines (sdk -> ../sdk), so `go install pkg/v3/cmd/pulumi@vX` refuses it and a
// wrapper module has to require pkg/v3 and sdk/v3 at the same release.
module gluster-ha/scripts/engine/cli

go 1.26.6

// Same fork upstream builds with (pkg/v3's go.mod replaces it too).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
