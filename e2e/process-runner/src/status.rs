//! Pod status as the kubelet reports it, built from what the runner knows
//! about its processes (pure: no I/O, time passed in).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The state of one container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated(Termination),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

impl Termination {
    fn reason(&self) -> &'static str {
        if self.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// What the runner tracks per container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRuntime {
    pub name: String,
    pub image: String,
    pub state: RunState,
    pub last_termination: Option<Termination>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
}

fn state_of(state: &RunState) -> ContainerState {
    match state {
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        RunState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        RunState::Terminated(t) => ContainerState {
            terminated: Some(terminated(t)),
            ..Default::default()
        },
    }
}

fn terminated(t: &Termination) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason().into()),
        started_at: t.started_at.map(Time),
        finished_at: Some(Time(t.finished_at)),
        ..Default::default()
    }
}

/// Inputs of a status beyond the containers.
pub struct PodFactsForStatus<'a> {
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub start_time: Timestamp,
    pub restart_always: bool,
    pub now: Timestamp,
}

fn phase(containers: &[ContainerRuntime], restart_always: bool) -> &'static str {
    let all_terminated = !containers.is_empty()
        && containers
            .iter()
            .all(|c| matches!(c.state, RunState::Terminated(_)));
    let any_started = containers
        .iter()
        .any(|c| !matches!(c.state, RunState::Waiting { .. }) || c.restart_count > 0);
    if all_terminated && !restart_always {
        let failed = containers
            .iter()
            .any(|c| matches!(&c.state, RunState::Terminated(t) if t.exit_code != 0));
        if failed { "Failed" } else { "Succeeded" }
    } else if any_started {
        "Running"
    } else {
        "Pending"
    }
}

/// Keeps lastTransitionTime when the status of a condition did not change.
fn condition(prev: Option<&PodStatus>, kind: &str, ok: bool, now: Timestamp) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = prev
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The Pod status for `containers` (in spec order), without init containers.
#[cfg(test)]
pub fn pod_status(
    pod: &Pod,
    containers: &[ContainerRuntime],
    facts: &PodFactsForStatus<'_>,
) -> PodStatus {
    pod_status_with_init(pod, &[], containers, facts)
}

fn succeeded(c: &ContainerRuntime) -> bool {
    matches!(&c.state, RunState::Terminated(t) if t.exit_code == 0)
}

fn container_statuses(containers: &[ContainerRuntime]) -> Vec<ContainerStatus> {
    containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: format!("local://{}", c.image),
            container_id: Some(format!("process://{}", c.name)),
            ready: c.ready,
            started: Some(c.started),
            restart_count: c.restart_count,
            state: Some(state_of(&c.state)),
            last_state: c.last_termination.as_ref().map(|t| ContainerState {
                terminated: Some(terminated(t)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The Pod status for its init containers and containers (in spec order).
pub fn pod_status_with_init(
    pod: &Pod,
    init: &[ContainerRuntime],
    containers: &[ContainerRuntime],
    facts: &PodFactsForStatus<'_>,
) -> PodStatus {
    let prev = pod.status.as_ref();
    let initialized = init.iter().all(succeeded);
    let all_ready = initialized && !containers.is_empty() && containers.iter().all(|c| c.ready);
    // An init container that failed for good (restartPolicy Never) fails the Pod.
    let init_failed = !facts.restart_always
        && init
            .iter()
            .any(|c| matches!(&c.state, RunState::Terminated(t) if t.exit_code != 0));
    let phase = if init_failed {
        "Failed"
    } else if !initialized {
        "Pending"
    } else {
        phase(containers, facts.restart_always)
    };
    let ips = (!facts.pod_ip.is_empty()).then(|| {
        vec![PodIP {
            ip: facts.pod_ip.to_owned(),
        }]
    });
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(vec![
            condition(prev, "PodReadyToStartContainers", true, facts.now),
            condition(prev, "Initialized", initialized, facts.now),
            condition(prev, "Ready", all_ready, facts.now),
            condition(prev, "ContainersReady", all_ready, facts.now),
            condition(prev, "PodScheduled", true, facts.now),
        ]),
        host_ip: Some(facts.host_ip.to_owned()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: facts.host_ip.to_owned(),
        }]),
        pod_ip: ips.as_ref().map(|_| facts.pod_ip.to_owned()),
        pod_ips: ips,
        start_time: Some(Time(facts.start_time)),
        container_statuses: Some(container_statuses(containers)),
        init_container_statuses: (!init.is_empty()).then(|| container_statuses(init)),
        qos_class: prev.and_then(|p| p.qos_class.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodCondition;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn running(ready: bool) -> ContainerRuntime {
        ContainerRuntime {
            name: "app".into(),
            image: "um-operator:1".into(),
            state: RunState::Running { started_at: t(1) },
            last_termination: None,
            restart_count: 0,
            ready,
            started: true,
        }
    }

    fn facts(now: i64, restart_always: bool) -> PodFactsForStatus<'static> {
        PodFactsForStatus {
            pod_ip: "127.0.1.2",
            host_ip: "127.0.0.1",
            start_time: t(0),
            restart_always,
            now: t(now),
        }
    }

    fn cond<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    #[test]
    fn ready_when_all_containers_ready_and_keeps_transition_time() {
        let mut pod = Pod::default();
        let s1 = pod_status(&pod, &[running(false)], &facts(5, true));
        assert_eq!(s1.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s1, "Ready").status, "False");
        assert_eq!(cond(&s1, "PodScheduled").status, "True");
        assert_eq!(s1.pod_ip.as_deref(), Some("127.0.1.2"));
        assert_eq!(s1.pod_ips.as_ref().unwrap()[0].ip, "127.0.1.2");

        pod.status = Some(s1);
        let s2 = pod_status(&pod, &[running(true)], &facts(9, true));
        assert_eq!(cond(&s2, "Ready").status, "True");
        assert_eq!(cond(&s2, "Ready").last_transition_time, Some(Time(t(9))));
        assert_eq!(
            cond(&s2, "Initialized").last_transition_time,
            Some(Time(t(5))),
            "unchanged condition keeps its transition time"
        );
        let cs = &s2.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert!(cs.state.as_ref().unwrap().running.is_some());
    }

    #[test]
    fn init_containers_gate_initialized_and_ready() {
        let pod = Pod::default();
        let init_running = ContainerRuntime {
            name: "migrate".into(),
            ..running(false)
        };
        let main_waiting = ContainerRuntime {
            state: RunState::Waiting {
                reason: "PodInitializing".into(),
                message: None,
            },
            started: false,
            ..running(false)
        };
        let s = pod_status_with_init(
            &pod,
            std::slice::from_ref(&init_running),
            &[main_waiting],
            &facts(1, true),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Initialized").status, "False");
        assert_eq!(
            s.init_container_statuses.as_ref().unwrap()[0].name,
            "migrate"
        );

        let init_done = ContainerRuntime {
            state: RunState::Terminated(Termination {
                exit_code: 0,
                signal: None,
                started_at: Some(t(1)),
                finished_at: t(2),
            }),
            ..init_running.clone()
        };
        let s = pod_status_with_init(&pod, &[init_done], &[running(true)], &facts(3, true));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Initialized").status, "True");
        assert_eq!(cond(&s, "Ready").status, "True");

        let init_failed = ContainerRuntime {
            state: RunState::Terminated(Termination {
                exit_code: 1,
                signal: None,
                started_at: Some(t(1)),
                finished_at: t(2),
            }),
            ..init_running
        };
        let s = pod_status_with_init(&pod, &[init_failed], &[running(false)], &facts(3, false));
        assert_eq!(s.phase.as_deref(), Some("Failed"), "restartPolicy Never");
    }

    #[test]
    fn phases_follow_container_states() {
        let pod = Pod::default();
        let waiting = ContainerRuntime {
            state: RunState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            started: false,
            ..running(false)
        };
        assert_eq!(
            pod_status(&pod, std::slice::from_ref(&waiting), &facts(1, true))
                .phase
                .as_deref(),
            Some("Pending")
        );
        let done = |code| ContainerRuntime {
            state: RunState::Terminated(Termination {
                exit_code: code,
                signal: None,
                started_at: Some(t(1)),
                finished_at: t(2),
            }),
            ..running(false)
        };
        assert_eq!(
            pod_status(&pod, &[done(0)], &facts(3, false))
                .phase
                .as_deref(),
            Some("Succeeded")
        );
        assert_eq!(
            pod_status(&pod, &[done(0), done(2)], &facts(3, false))
                .phase
                .as_deref(),
            Some("Failed")
        );
        let crashed = pod_status(&pod, &[done(2)], &facts(3, true));
        assert_eq!(
            crashed.phase.as_deref(),
            Some("Running"),
            "restartPolicy Always"
        );
        let term = crashed.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(term.exit_code, 2);
        assert_eq!(term.reason.as_deref(), Some("Error"));
        let restarted = ContainerRuntime {
            restart_count: 3,
            last_termination: Some(Termination {
                exit_code: 1,
                signal: None,
                started_at: None,
                finished_at: t(2),
            }),
            ..waiting
        };
        let s = pod_status(&pod, &[restarted], &facts(3, true));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 3);
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
    }
}
