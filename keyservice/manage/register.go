package manage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/keyservice/app"
)

// ServiceType is the catalog type Barbican clients look for.
const ServiceType = "key-manager"

// RegisterOptions say what to put in the Keystone catalog.
type RegisterOptions struct {
	Name        string // service name, "arca"
	Region      string
	PublicURL   string
	InternalURL string // defaults to PublicURL
	AdminURL    string // defaults to InternalURL
	// Replace allows taking over a region where another key-manager service
	// (Barbican, say) has endpoints: its endpoints there are deleted.
	Replace bool
}

// RegisterResult reports what Register did.
type RegisterResult struct {
	ServiceID string
	Created   []string // what was created or changed, for the operator
}

// ErrOtherKeyManager is returned when another key-manager service serves
// the region and Replace was not given.
var ErrOtherKeyManager = errors.New("another key-manager service is registered in this region")

// Register creates, idempotently, the key-manager service and its public,
// internal and admin endpoints. URLs must be unversioned: gophercloud
// appends "v1/" and a /v1 catalog URL breaks it.
func Register(ctx context.Context, identity *gophercloud.ServiceClient, opts RegisterOptions) (RegisterResult, error) {
	var res RegisterResult
	opts, err := opts.withDefaults()
	if err != nil {
		return res, err
	}
	if err := ensureRegion(ctx, identity, opts.Region, &res); err != nil {
		return res, err
	}
	ours, err := claimRegion(ctx, identity, opts, &res)
	if err != nil {
		return res, err
	}
	if ours == nil {
		created, err := services.Create(ctx, identity, services.CreateOpts{
			Type: ServiceType, Name: opts.Name, Description: "Arca key manager (Barbican v1 API)",
		}).Extract()
		if err != nil {
			return res, fmt.Errorf("creating service: %w", err)
		}
		ours = created
		res.Created = append(res.Created, fmt.Sprintf("created service %q (%s)", opts.Name, ours.ID))
	}
	res.ServiceID = ours.ID
	return res, ensureEndpoints(ctx, identity, ours.ID, opts, &res)
}

// withDefaults fills the internal and admin URLs and checks all three.
func (opts RegisterOptions) withDefaults() (RegisterOptions, error) {
	if opts.Name == "" {
		opts.Name = "arca"
	}
	if opts.InternalURL == "" {
		opts.InternalURL = opts.PublicURL
	}
	if opts.AdminURL == "" {
		opts.AdminURL = opts.InternalURL
	}
	for _, u := range []string{opts.PublicURL, opts.InternalURL, opts.AdminURL} {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return opts, fmt.Errorf("endpoint URL %q must start with http:// or https://", u)
		}
		if trimmed := strings.TrimRight(u, "/"); strings.HasSuffix(trimmed, "/v1") {
			return opts, fmt.Errorf("endpoint URL %q must be unversioned (without /v1): clients append the version", u)
		}
	}
	return opts, nil
}

// claimRegion finds the key-manager service named opts.Name (nil when
// there is none) and makes sure no other key-manager service has endpoints
// in the region: with Replace they are deleted, without it that is
// ErrOtherKeyManager.
func claimRegion(ctx context.Context, identity *gophercloud.ServiceClient, opts RegisterOptions, res *RegisterResult) (*services.Service, error) {
	pages, err := services.List(identity, services.ListOpts{ServiceType: ServiceType}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing key-manager services: %w", err)
	}
	existing, err := services.ExtractServices(pages)
	if err != nil {
		return nil, fmt.Errorf("listing key-manager services: %w", err)
	}
	var ours *services.Service
	for i := range existing {
		svc := &existing[i]
		if svc.Name == opts.Name && ours == nil {
			ours = svc
			continue
		}
		eps, err := listEndpoints(ctx, identity, svc.ID, opts.Region)
		if err != nil {
			return nil, err
		}
		if len(eps) == 0 {
			continue
		}
		if !opts.Replace {
			return nil, fmt.Errorf("%w: service %q (%s) has %d endpoint(s) in region %s; rerun with --replace to remove them and register %q instead",
				ErrOtherKeyManager, svc.Name, svc.ID, len(eps), opts.Region, opts.Name)
		}
		for _, ep := range eps {
			if err := endpoints.Delete(ctx, identity, ep.ID).ExtractErr(); err != nil {
				return nil, fmt.Errorf("deleting endpoint %s of service %q: %w", ep.ID, svc.Name, err)
			}
			res.Created = append(res.Created, fmt.Sprintf("deleted %s endpoint %s of service %q", ep.Availability, ep.URL, svc.Name))
		}
	}
	return ours, nil
}

// ensureEndpoints creates or corrects the service's public, internal and
// admin endpoints in the region.
func ensureEndpoints(ctx context.Context, identity *gophercloud.ServiceClient, serviceID string, opts RegisterOptions, res *RegisterResult) error {
	eps, err := listEndpoints(ctx, identity, serviceID, opts.Region)
	if err != nil {
		return err
	}
	want := map[gophercloud.Availability]string{
		gophercloud.AvailabilityPublic: opts.PublicURL, gophercloud.AvailabilityInternal: opts.InternalURL,
		gophercloud.AvailabilityAdmin: opts.AdminURL,
	}
	for _, iface := range []gophercloud.Availability{gophercloud.AvailabilityPublic, gophercloud.AvailabilityInternal, gophercloud.AvailabilityAdmin} {
		url := want[iface]
		var found *endpoints.Endpoint
		for i := range eps {
			if eps[i].Availability == iface {
				found = &eps[i]
				break
			}
		}
		switch {
		case found == nil:
			if _, err := endpoints.Create(ctx, identity, endpoints.CreateOpts{
				Availability: iface, Region: opts.Region, URL: url, ServiceID: serviceID,
			}).Extract(); err != nil {
				return fmt.Errorf("creating %s endpoint: %w", iface, err)
			}
			res.Created = append(res.Created, fmt.Sprintf("created %s endpoint %s", iface, url))
		case found.URL != url:
			if _, err := endpoints.Update(ctx, identity, found.ID, endpoints.UpdateOpts{URL: url}).Extract(); err != nil {
				return fmt.Errorf("updating %s endpoint: %w", iface, err)
			}
			res.Created = append(res.Created, fmt.Sprintf("changed %s endpoint %s -> %s", iface, found.URL, url))
		}
	}
	return nil
}

// ensureRegion creates the region when Keystone does not know it yet:
// endpoints can only be created in an existing region.
func ensureRegion(ctx context.Context, identity *gophercloud.ServiceClient, region string, res *RegisterResult) error {
	if region == "" {
		return errors.New("no region given")
	}
	_, err := regions.Get(ctx, identity, region).Extract()
	if err == nil {
		return nil
	}
	if !gophercloud.ResponseCodeIs(err, 404) {
		return fmt.Errorf("looking up region %s: %w", region, err)
	}
	if _, err := regions.Create(ctx, identity, regions.CreateOpts{ID: region}).Extract(); err != nil {
		return fmt.Errorf("creating region %s: %w", region, err)
	}
	res.Created = append(res.Created, "created region "+region)
	return nil
}

func listEndpoints(ctx context.Context, identity *gophercloud.ServiceClient, serviceID, region string) ([]endpoints.Endpoint, error) {
	pages, err := endpoints.List(identity, endpoints.ListOpts{ServiceID: serviceID, RegionID: region}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing endpoints of service %s: %w", serviceID, err)
	}
	eps, err := endpoints.ExtractEndpoints(pages)
	if err != nil {
		return nil, fmt.Errorf("listing endpoints of service %s: %w", serviceID, err)
	}
	return eps, nil
}

// IdentityClient authenticates for catalog changes: with the OS_*
// environment variables when OS_AUTH_URL is set (an admin's openrc), else
// as arca-api's service user of [keystone_authtoken], with the credentials
// arca-api's token validator uses (a password or an application credential).
func IdentityClient(ctx context.Context, f *config.File) (*gophercloud.ServiceClient, error) {
	var auth gophercloud.AuthOptions
	if os.Getenv("OS_AUTH_URL") != "" {
		auth = authOptionsFromOpenrc(os.Getenv)
	} else {
		kcfg, err := app.KeystoneConfig(f)
		if err != nil {
			return nil, fmt.Errorf("no OS_AUTH_URL in the environment and %w", err)
		}
		if auth, err = kcfg.AuthOptions(); err != nil {
			return nil, fmt.Errorf("no OS_AUTH_URL in the environment and [keystone_authtoken]: %w", err)
		}
	}
	provider, err := openstack.AuthenticatedClient(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("authenticating with Keystone at %s: %w", auth.IdentityEndpoint, err)
	}
	identity, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, fmt.Errorf("identity endpoint: %w", err)
	}
	return identity, nil
}

// authOptionsFromOpenrc reads the OS_* variables an openrc file (DevStack's,
// or "openstack ... -f shell" output) sets. Unlike gophercloud's
// AuthOptionsFromEnv it understands OS_USER_DOMAIN_* and OS_PROJECT_DOMAIN_*,
// which is what openrc files use.
func authOptionsFromOpenrc(env func(string) string) gophercloud.AuthOptions {
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := env(k); v != "" {
				return v
			}
		}
		return ""
	}
	auth := gophercloud.AuthOptions{
		IdentityEndpoint:            env("OS_AUTH_URL"),
		Username:                    env("OS_USERNAME"),
		UserID:                      env("OS_USER_ID"),
		Password:                    env("OS_PASSWORD"),
		DomainName:                  first("OS_USER_DOMAIN_NAME", "OS_DOMAIN_NAME"),
		DomainID:                    first("OS_USER_DOMAIN_ID", "OS_DOMAIN_ID"),
		ApplicationCredentialID:     env("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   env("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: env("OS_APPLICATION_CREDENTIAL_SECRET"),
	}
	if auth.ApplicationCredentialID != "" || auth.ApplicationCredentialName != "" {
		return auth // an application credential carries its own scope
	}
	scope := &gophercloud.AuthScope{
		ProjectID:   env("OS_PROJECT_ID"),
		ProjectName: first("OS_PROJECT_NAME", "OS_TENANT_NAME"),
		DomainName:  first("OS_PROJECT_DOMAIN_NAME", "OS_DOMAIN_NAME"),
		DomainID:    first("OS_PROJECT_DOMAIN_ID", "OS_DOMAIN_ID"),
	}
	if scope.ProjectID != "" {
		scope.DomainName, scope.DomainID = "", ""
	}
	auth.Scope = scope
	return auth
}

func register(ctx context.Context, configFiles, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	var opts RegisterOptions
	fs.StringVar(&opts.Name, "name", "arca", "service name in the catalog")
	fs.StringVar(&opts.Region, "region", "RegionOne", "region of the endpoints")
	fs.StringVar(&opts.PublicURL, "url", "", "public endpoint URL, unversioned (default: [DEFAULT] host_href)")
	fs.StringVar(&opts.InternalURL, "internal-url", "", "internal endpoint URL (default: the public URL)")
	fs.StringVar(&opts.AdminURL, "admin-url", "", "admin endpoint URL (default: the internal URL)")
	fs.BoolVar(&opts.Replace, "replace", false, "remove another key-manager service's endpoints in the region")
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	f, err := config.Load(configFiles...)
	if err != nil {
		return err
	}
	if opts.PublicURL == "" {
		opts.PublicURL = f.String("DEFAULT", "host_href", "")
		if opts.PublicURL == "" {
			return errors.New("no endpoint URL: pass --url or set [DEFAULT] host_href")
		}
	}
	identity, err := IdentityClient(ctx, f)
	if err != nil {
		return err
	}
	res, err := Register(ctx, identity, opts)
	for _, line := range res.Created {
		fmt.Fprintln(stdout, line)
	}
	if err != nil {
		return err
	}
	if len(res.Created) == 0 {
		fmt.Fprintf(stdout, "service %q (%s) already registered in %s with these URLs: nothing to do\n", opts.Name, res.ServiceID, opts.Region)
	}
	return nil
}
