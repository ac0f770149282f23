module github.com/runagent/runagent

go 1.26.8
