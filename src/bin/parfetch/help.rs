//! The text after the options in `--help`: worked examples, the output,
//! the environment the command reads, and the exit status. Apart from
//! `args.rs` so that the options stay readable.

/// Shown after the options.
pub(crate) const AFTER_HELP: &str = "\
Examples:
  Fetch a few URLs, one JSON line each on standard output:
    parfetch https://cdn.example/a.json https://cdn.example/b.json
  Fetch a list (one URL per line; '#' comments), 64 at a time, into a file:
    parfetch -i urls.txt -c 64 -o results.jsonl
  Mirror the documents into a directory, at most 50 requests/s per host:
    parfetch -i urls.txt --out-dir mirror/ --rate 50
  Split one list across 4 jobs (this is job 0), in input order:
    parfetch -i urls.txt --shard 0/4 --ordered > part-0.jsonl
  One part per task of an array job, each host in one part, restartable:
    parfetch -i urls.txt --shard auto --shard-by host --resume -o part.jsonl \\
      --failed failed.txt --summary-json summary.json
  Fetch again what failed:
    parfetch -i failed.txt -o retried.jsonl
  Cache responses, then read them back without the network:
    parfetch -i urls.txt --cache-dir ~/.cache/parfetch
    parfetch -i urls.txt --cache-dir ~/.cache/parfetch --offline
  Behind a company proxy, trusting its CA:
    parfetch -i urls.txt --proxy http://proxy.corp:3128 --cacert corp-ca.pem
  Give up after 10 minutes, and keep figures for a script:
    parfetch -i urls.txt --deadline 10m --summary-json summary.json
  Shell completions:
    parfetch completions bash > ~/.local/share/bash-completion/completions/parfetch
    (also zsh, fish, elvish, powershell)

Output: one JSON line per URL, in completion order (--ordered: input order):
  {\"index\",\"url\",\"ok\",\"status\",\"attempts\",\"elapsed_ms\",\"error\",\"body\"}
  the index is the URL's place in the whole list (from 0), in every shard;
  the body is the JSON as the server sent it, on one line.
Progress and the summary go to standard error (a bar with an ETA when the
number of URLs is known); NO_COLOR turns colour off.

Environment (a flag wins over its variable; a value that does not parse is
an error, naming the variable):
  PARFETCH_CONCURRENCY      -c             PARFETCH_USER_AGENT  -A
  PARFETCH_TIMEOUT          --timeout      PARFETCH_CACHE_DIR   --cache-dir
  PARFETCH_CONNECT_TIMEOUT  --connect-timeout
  PARFETCH_RETRIES          --retry        PARFETCH_OFFLINE     --offline (1/0)
  PARFETCH_CI=1             no cache, whatever else says (CI runs see the servers)
  PARFETCH_SHARDS           --shards
--shard auto reads the index the job scheduler gives each task (0-based):
  Kubernetes Indexed Job    JOB_COMPLETION_INDEX, with --shards N or PARFETCH_SHARDS
  Cloud Run jobs            CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT
  AWS Batch array jobs      AWS_BATCH_JOB_ARRAY_INDEX, AWS_BATCH_JOB_ARRAY_SIZE
  Slurm job arrays          SLURM_ARRAY_TASK_ID counted from SLURM_ARRAY_TASK_MIN
                            (by SLURM_ARRAY_TASK_STEP), SLURM_ARRAY_TASK_COUNT or _MAX
  --summary-json records the attempt from AWS_BATCH_JOB_ATTEMPT,
  CLOUD_RUN_TASK_ATTEMPT or SLURM_RESTART_COUNT. With GNU parallel:
    parallel parfetch -i urls.txt --shard {}/4 --resume -o part-{}.jsonl ::: 0 1 2 3
Proxies: http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY are read as curl
reads them, unless --proxy or --no-proxy says otherwise. Certificates are
checked against Mozilla's roots and the machine's store (--no-system-roots:
not the machine's store), plus SSL_CERT_FILE / SSL_CERT_DIR and --cacert.
Exit status: 0 all succeeded, 2 some failed, 1 usage or I/O error, 130 interrupted.
Interrupted: Ctrl-C, SIGTERM or SIGHUP; what finished is written, then the summary.";
