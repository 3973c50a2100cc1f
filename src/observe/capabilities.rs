//! What a libvirt host offers: hypervisor, architecture, KVM or only TCG.
