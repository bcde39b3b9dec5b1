module github.com/voldfs/voldfs/adapters/afero

go 1.26.8

replace github.com/voldfs/voldfs => ../..

require (
	github.com/spf13/afero v1.15.0
	github.com/stretchr/testify v1.12.1
	github.com/voldfs/voldfs v0.0.0
)

require (
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c // indirect
	go.etcd.io/bbolt v1.5.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.28.0 // indirect
)
