using System.Reflection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web.Subscribers;

/// <summary>Endpoint metadata: which kind of personal link a route's <c>{token}</c> must be.</summary>
public sealed record PersonalLinkPurpose(LinkPurpose Purpose);

/// <summary>
/// The subscriber a personal link names, handed to a route once its <c>{token}</c> is checked: signed
/// for the route's <see cref="PersonalLinkPurpose"/> (a preferences token does not unsubscribe),
/// not expired (confirmation links live <c>Newsletter__Subscribe__ConfirmationLinkLifetime</c>),
/// and naming a subscriber who still exists. Any other token is a 404 "link not valid" page, and
/// the route's handler never runs.
/// </summary>
public sealed record PersonalLink(string Token, Subscriber Subscriber) : IBindableFromHttpContext<PersonalLink>
{
    /// <summary>The field a refused token is reported under.</summary>
    public const string Field = "token";

    public static async ValueTask<PersonalLink?> BindAsync(HttpContext context, ParameterInfo parameter)
    {
        var purpose = context.GetEndpoint()?.Metadata.GetMetadata<PersonalLinkPurpose>()?.Purpose
            ?? throw new InvalidOperationException($"{context.Request.Path}: a personal link route needs {nameof(PersonalLinkPurpose)} metadata");
        var services = context.RequestServices;
        var token = context.GetRouteValue("token") as string ?? "";
        var maxAge = purpose == LinkPurpose.Confirm ? services.GetRequiredService<IOptions<SubscribeOptions>>().Value.ConfirmationLinkLifetime : (TimeSpan?)null;
        if (services.GetRequiredService<LinkSigner>().TryVerify(token, purpose, services.GetRequiredService<TimeProvider>().GetUtcNow(), maxAge, out var publicId)
            && await services.GetRequiredService<Subscriptions>().FindAsync(publicId, context.RequestAborted) is { } subscriber)
            return new PersonalLink(token, subscriber);
        throw new NotFoundException(Field, "the link is not valid or has expired");
    }
}
