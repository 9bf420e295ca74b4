//go:build ignore

// gen_vectors.go writes cometbft_v0.39.4.json: reference values computed by CometBFT's own
// Go code, so the Python light client (rtc.client.lightclient) is checked against the real
// implementation rather than against itself. It is not part of any build.
//
// Regenerate (offline, from the module cache):
//
//	M=$(go env GOMODCACHE)/github.com/cometbft/cometbft@v0.39.4
//	mkdir -p /tmp/vecgen && cp tests/client/vectors/gen_vectors.go /tmp/vecgen/main.go
//	(echo "module vecgen"; sed -n '/^go /,$p' $M/go.mod | grep -v '^toolchain'; \
//	 echo "require github.com/cometbft/cometbft v0.39.4") > /tmp/vecgen/go.mod
//	cp $M/go.sum /tmp/vecgen/ && sed -i 's#^//go:build ignore##' /tmp/vecgen/main.go
//	(cd /tmp/vecgen && GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go run .) \
//	  > tests/client/vectors/cometbft_v0.39.4.json
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

type scenario struct {
	Name        string          `json:"name"`
	ChainID     string          `json:"chain_id"`
	Commit      json.RawMessage `json:"commit"`     // as /commit returns it (result part)
	Validators  json.RawMessage `json:"validators"` // as /validators returns it (result part)
	HeaderHash  string          `json:"header_hash"`
	ValsHash    string          `json:"validators_hash"`
	SignBytes   []string        `json:"sign_bytes"` // per commit signature, "" when absent
	VerifyFull  string          `json:"verify_commit"`
	VerifyLight string          `json:"verify_commit_light"`
	Mutations   []mutation      `json:"mutations"`
}

// mutation: flip the first byte of one signature, and what CometBFT then says.
type mutation struct {
	Flip        []int  `json:"flip_signatures"`
	VerifyFull  string `json:"verify_commit"`
	VerifyLight string `json:"verify_commit_light"`
}

func sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	// "wrong signature (#3): <hex of the CommitSig>" -> "error: wrong signature (#3)"
	return "error: " + strings.SplitN(err.Error(), ":", 2)[0]
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func raw(v any) json.RawMessage {
	bz, err := cmtjson.Marshal(v)
	must(err)
	return bz
}

// build signs a block at (height, round) with flags[i] for the i-th validator of the
// sorted set (1 absent, 2 commit, 3 nil).
func build(name, chainID string, height int64, round int32, powers []int64, flags []types.BlockIDFlag,
	headerTime time.Time, lastBlockID types.BlockID, appHash []byte, appVersion uint64,
) scenario {
	privs := map[string]ed25519.PrivKey{}
	var vals []*types.Validator
	for i, p := range powers {
		priv := ed25519.GenPrivKeyFromSecret([]byte(fmt.Sprintf("%s-validator-%d", name, i)))
		pub := priv.PubKey()
		privs[string(pub.Address())] = priv
		vals = append(vals, types.NewValidator(pub, p))
	}
	valSet := types.NewValidatorSet(vals)
	header := &types.Header{
		Version:            cmtversion.Consensus{Block: version.BlockProtocol, App: appVersion},
		ChainID:            chainID,
		Height:             height,
		Time:               headerTime,
		LastBlockID:        lastBlockID,
		LastCommitHash:     sum("last_commit"),
		DataHash:           sum(""),
		ValidatorsHash:     valSet.Hash(),
		NextValidatorsHash: valSet.Hash(),
		ConsensusHash:      sum("consensus"),
		AppHash:            appHash,
		LastResultsHash:    sum(""),
		EvidenceHash:       sum(""),
		ProposerAddress:    valSet.GetProposer().Address,
	}
	blockID := types.BlockID{Hash: header.Hash(), PartSetHeader: types.PartSetHeader{Total: 3, Hash: sum("parts")}}
	commit := &types.Commit{Height: height, Round: round, BlockID: blockID}
	for i, v := range valSet.Validators {
		if flags[i] == types.BlockIDFlagAbsent {
			commit.Signatures = append(commit.Signatures, types.NewCommitSigAbsent())
			continue
		}
		// Votes arrive a little after the header time, each with its own timestamp;
		// the third one falls on a whole second (zero nanos, omitted from the encoding).
		ts := headerTime.Add(time.Duration(i+1)*time.Second + time.Duration(i*1234567))
		if i == 2 {
			ts = ts.Truncate(time.Second)
		}
		commit.Signatures = append(commit.Signatures, types.CommitSig{
			BlockIDFlag: flags[i], ValidatorAddress: v.Address, Timestamp: ts,
		})
	}
	var signBytes []string
	for i := range commit.Signatures {
		cs := &commit.Signatures[i]
		if cs.BlockIDFlag == types.BlockIDFlagAbsent {
			signBytes = append(signBytes, "")
			continue
		}
		sb := commit.VoteSignBytes(chainID, int32(i))
		sig, err := privs[string(cs.ValidatorAddress)].Sign(sb)
		must(err)
		cs.Signature = sig
		signBytes = append(signBytes, hex.EncodeToString(sb))
	}
	must(commit.ValidateBasic())
	sh := types.SignedHeader{Header: header, Commit: commit}
	must(sh.ValidateBasic(chainID))

	s := scenario{
		Name:        name,
		ChainID:     chainID,
		Commit:      raw(ctypes.NewResultCommit(header, commit, true)),
		Validators:  raw(&ctypes.ResultValidators{BlockHeight: height, Validators: valSet.Validators, Count: valSet.Size(), Total: valSet.Size()}),
		HeaderHash:  hex.EncodeToString(header.Hash()),
		ValsHash:    hex.EncodeToString(valSet.Hash()),
		SignBytes:   signBytes,
		VerifyFull:  verdict(types.VerifyCommit(chainID, valSet, blockID, height, commit)),
		VerifyLight: verdict(types.VerifyCommitLight(chainID, valSet, blockID, height, commit)),
	}
	// Forge signatures one at a time, then in pairs, and record CometBFT's verdicts.
	var sets [][]int
	for i := range commit.Signatures {
		sets = append(sets, []int{i})
	}
	for i := range commit.Signatures {
		for j := i + 1; j < len(commit.Signatures); j++ {
			sets = append(sets, []int{i, j})
		}
	}
	for _, set := range sets {
		skip := false
		forged := &types.Commit{Height: commit.Height, Round: commit.Round, BlockID: commit.BlockID}
		forged.Signatures = append([]types.CommitSig(nil), commit.Signatures...)
		for _, i := range set {
			if forged.Signatures[i].BlockIDFlag == types.BlockIDFlagAbsent {
				skip = true
				break
			}
			sig := append([]byte(nil), forged.Signatures[i].Signature...)
			sig[0] ^= 0x01
			forged.Signatures[i].Signature = sig
		}
		if skip {
			continue
		}
		s.Mutations = append(s.Mutations, mutation{
			Flip:        set,
			VerifyFull:  verdict(types.VerifyCommit(chainID, valSet, blockID, height, forged)),
			VerifyLight: verdict(types.VerifyCommitLight(chainID, valSet, blockID, height, forged)),
		})
	}
	return s
}

// headerTest is TestHeaderHash's header from types/block_test.go, with its published hash.
func headerTest() map[string]any {
	h := &types.Header{
		Version:            cmtversion.Consensus{Block: 1, App: 2},
		ChainID:            "chainId",
		Height:             3,
		Time:               time.Date(2019, 10, 13, 16, 14, 44, 0, time.UTC),
		LastBlockID:        types.BlockID{Hash: make([]byte, 32), PartSetHeader: types.PartSetHeader{Total: 6, Hash: make([]byte, 32)}},
		LastCommitHash:     sum("last_commit_hash"),
		DataHash:           sum("data_hash"),
		ValidatorsHash:     sum("validators_hash"),
		NextValidatorsHash: sum("next_validators_hash"),
		ConsensusHash:      sum("consensus_hash"),
		AppHash:            sum("app_hash"),
		LastResultsHash:    sum("last_results_hash"),
		EvidenceHash:       sum("evidence_hash"),
		ProposerAddress:    sum("proposer_address")[:20],
	}
	return map[string]any{"header": raw(h), "hash": hex.EncodeToString(h.Hash())}
}

// voteVector is exampleVote from types/vote_test.go (a precommit with a full block ID), and
// the same vote for nil.
func voteVectors() []map[string]any {
	stamp, err := time.Parse(types.TimeFormat, "2017-12-25T03:00:01.234Z")
	must(err)
	bid := types.BlockID{Hash: sum("blockID_hash"), PartSetHeader: types.PartSetHeader{Total: 1000000, Hash: sum("blockID_part_set_header_hash")}}
	var out []map[string]any
	for _, v := range []*types.Vote{
		{Type: cmtproto.PrecommitType, Height: 12345, Round: 2, Timestamp: stamp, BlockID: bid},
		{Type: cmtproto.PrecommitType, Height: 12345, Round: 2, Timestamp: stamp},
		{Type: cmtproto.PrecommitType, Height: 1, Round: 0, Timestamp: time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC), BlockID: bid},
	} {
		out = append(out, map[string]any{
			"chain_id": "test_chain_id", "height": fmt.Sprint(v.Height), "round": fmt.Sprint(v.Round),
			"timestamp": v.Timestamp.UTC().Format(time.RFC3339Nano),
			"block_id": raw(v.BlockID),
			"sign_bytes": hex.EncodeToString(types.VoteSignBytes("test_chain_id", v.ToProto())),
		})
	}
	return out
}

func main() {
	ts := time.Date(2024, 3, 5, 6, 7, 8, 9, time.UTC)
	prev := types.BlockID{Hash: sum("previous block"), PartSetHeader: types.PartSetHeader{Total: 1, Hash: sum("previous parts")}}
	A, C, N := types.BlockIDFlagAbsent, types.BlockIDFlagCommit, types.BlockIDFlagNil
	out := map[string]any{
		"source":      "generated by tests/client/vectors/gen_vectors.go with github.com/cometbft/cometbft v0.39.4",
		"header_test": headerTest(),
		"votes":       voteVectors(),
		"scenarios": []scenario{
			// 7 validators, unequal powers (two ties so the address order matters), round 2,
			// one absent and one nil vote.
			build("mixed", "vectors-chain", 7, 2, []int64{50, 30, 30, 10, 10, 10, 5},
				[]types.BlockIDFlag{C, C, C, A, C, C, N}, ts, prev, sum("app"), 1),
			// 4 equal validators, like our devnet, all signing.
			build("four", "rtc-devnet", 12, 0, []int64{10, 10, 10, 10},
				[]types.BlockIDFlag{C, C, C, C}, ts.Add(1500*time.Millisecond), prev, sum("app4"), 1),
			// The first block: empty last block ID, empty app hash, app version 0, a header
			// time before 1970 (negative seconds), one validator.
			build("genesis", "g", 1, 0, []int64{1},
				[]types.BlockIDFlag{C}, time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC), types.BlockID{}, nil, 0),
		},
	}
	bz, err := json.MarshalIndent(out, "", " ")
	must(err)
	os.Stdout.Write(append(bz, '\n'))
}
