//! Scale-out: sharded campaigns submitted to a cluster. [`slurm`] writes and submits a Slurm
//! job array (one task per shard, `chimera run --shard $SLURM_ARRAY_TASK_ID/N`) and a report
//! job that waits for it; [`k8s`] prints a Kubernetes Indexed Job that does the same. Both run
//! the shards against one campaign directory on a filesystem every node shares; the shards'
//! data come back together by themselves (see [`crate::store`]'s shard layout).

pub mod k8s;
pub mod slurm;
