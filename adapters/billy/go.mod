module github.com/voldfs/voldfs/adapters/billy

go 1.26.8

replace github.com/voldfs/voldfs => ../..

require (
	github.com/go-git/go-billy/v5 v5.9.2
	github.com/voldfs/voldfs v0.0.0
	gopkg.in/check.v1 v1.0.0-20201130134442-10cb98267c6c
)

require (
	github.com/kr/pretty v0.3.1 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/rogpeppe/go-internal v1.14.1 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
