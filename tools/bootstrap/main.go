// rtc-bootstrap prepares a CometBFT home whose application state was restored offline
// (from Swarm, by `rtc node restore`): it writes CometBFT's state and the commit at the
// restored height, verified by the light client against the peers named in the
// [statesync] section of config.toml, so the node block-syncs onward from there.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/node"
	"github.com/spf13/viper"
)

func main() {
	home := flag.String("home", "", "the CometBFT home (its data folder must be empty)")
	height := flag.Uint64("height", 0, "the height the application state was restored to")
	appHash := flag.String("app-hash", "", "the restored state's app_hash (hex), checked against the light client's")
	flag.Parse()
	if *home == "" || *height == 0 || *appHash == "" {
		fmt.Fprintln(os.Stderr, "usage: rtc-bootstrap --home DIR --height H --app-hash HEX")
		os.Exit(2)
	}
	hash, err := hex.DecodeString(*appHash)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtc-bootstrap: --app-hash is not hex:", err)
		os.Exit(2)
	}
	config := cmtcfg.DefaultConfig()
	v := viper.New()
	v.SetConfigFile(filepath.Join(*home, "config", "config.toml"))
	if err := v.ReadInConfig(); err != nil {
		fmt.Fprintln(os.Stderr, "rtc-bootstrap: reading config.toml:", err)
		os.Exit(1)
	}
	if err := v.Unmarshal(config); err != nil {
		fmt.Fprintln(os.Stderr, "rtc-bootstrap: parsing config.toml:", err)
		os.Exit(1)
	}
	config.SetRoot(*home)
	if err := node.BootstrapState(context.Background(), config, cmtcfg.DefaultDBProvider, *height, hash); err != nil {
		fmt.Fprintln(os.Stderr, "rtc-bootstrap:", err)
		os.Exit(1)
	}
	fmt.Printf("CometBFT state bootstrapped at height %d\n", *height)
}
