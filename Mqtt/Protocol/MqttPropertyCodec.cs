namespace CloudEdge.Mqtt;

/// <summary>Encodes and decodes the property block of v5 packets (section 2.2.2).</summary>
internal static class MqttPropertyCodec
{
    private static readonly MqttPropertyScope[] Allowed = BuildScopes();

    private static MqttPropertyScope[] BuildScopes()
    {
        const MqttPropertyScope Pub = MqttPropertyScope.Publish | MqttPropertyScope.Will;
        var a = new MqttPropertyScope[0x2B];
        a[(int)MqttPropertyId.PayloadFormatIndicator] = Pub;
        a[(int)MqttPropertyId.MessageExpiryInterval] = Pub;
        a[(int)MqttPropertyId.ContentType] = Pub;
        a[(int)MqttPropertyId.ResponseTopic] = Pub;
        a[(int)MqttPropertyId.CorrelationData] = Pub;
        a[(int)MqttPropertyId.SubscriptionIdentifier] = MqttPropertyScope.Publish | MqttPropertyScope.Subscribe;
        a[(int)MqttPropertyId.SessionExpiryInterval] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck | MqttPropertyScope.Disconnect;
        a[(int)MqttPropertyId.AssignedClientIdentifier] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.ServerKeepAlive] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.AuthenticationMethod] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck | MqttPropertyScope.Auth;
        a[(int)MqttPropertyId.AuthenticationData] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck | MqttPropertyScope.Auth;
        a[(int)MqttPropertyId.RequestProblemInformation] = MqttPropertyScope.Connect;
        a[(int)MqttPropertyId.WillDelayInterval] = MqttPropertyScope.Will;
        a[(int)MqttPropertyId.RequestResponseInformation] = MqttPropertyScope.Connect;
        a[(int)MqttPropertyId.ResponseInformation] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.ServerReference] = MqttPropertyScope.ConnAck | MqttPropertyScope.Disconnect;
        a[(int)MqttPropertyId.ReasonString] = MqttPropertyScope.ConnAck | MqttPropertyScope.PubResponse | MqttPropertyScope.SubAck
            | MqttPropertyScope.UnsubAck | MqttPropertyScope.Disconnect | MqttPropertyScope.Auth;
        a[(int)MqttPropertyId.ReceiveMaximum] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.TopicAliasMaximum] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.TopicAlias] = MqttPropertyScope.Publish;
        a[(int)MqttPropertyId.MaximumQoS] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.RetainAvailable] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.UserProperty] = MqttPropertyScope.All;
        a[(int)MqttPropertyId.MaximumPacketSize] = MqttPropertyScope.Connect | MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.WildcardSubscriptionAvailable] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.SubscriptionIdentifierAvailable] = MqttPropertyScope.ConnAck;
        a[(int)MqttPropertyId.SharedSubscriptionAvailable] = MqttPropertyScope.ConnAck;
        return a;
    }

    /// <summary>Reads the property length and the properties; null when the block is empty.</summary>
    public static MqttProperties? Read(ref MqttBodyReader reader, MqttPropertyScope scope)
    {
        var length = reader.ReadVariableByteInteger();
        if (length == 0) return null;
        if (length > reader.Remaining) throw MqttProtocolException.Malformed("Property length exceeds the packet.");
        var block = new MqttBodyReader(reader.ReadBytes((int)length));
        var p = new MqttProperties();
        ulong seen = 0;
        while (block.Remaining > 0)
        {
            var idValue = block.ReadVariableByteInteger();
            if (idValue >= (uint)Allowed.Length || (Allowed[idValue] & scope) == 0)
            {
                throw MqttProtocolException.Malformed($"Property 0x{idValue:X2} is not valid in this packet.");
            }
            var id = (MqttPropertyId)idValue;
            var repeatable = id == MqttPropertyId.UserProperty
                || (id == MqttPropertyId.SubscriptionIdentifier && scope == MqttPropertyScope.Publish);
            if (!repeatable)
            {
                var bit = 1UL << (int)idValue;
                if ((seen & bit) != 0) throw MqttProtocolException.Protocol($"Property 0x{idValue:X2} appears more than once.");
                seen |= bit;
            }
            switch (id)
            {
                case MqttPropertyId.PayloadFormatIndicator:
                    p.PayloadFormatIndicator = (MqttPayloadFormat)ReadFlag(ref block, id);
                    break;
                case MqttPropertyId.MessageExpiryInterval: p.MessageExpiryInterval = block.ReadUInt32(); break;
                case MqttPropertyId.ContentType: p.ContentType = block.ReadString(); break;
                case MqttPropertyId.ResponseTopic:
                    p.ResponseTopic = block.ReadString();
                    if (!MqttTopic.IsValidTopicName(p.ResponseTopic)) throw MqttProtocolException.Protocol("Response Topic is not a valid topic name.");
                    break;
                case MqttPropertyId.CorrelationData: p.CorrelationData = block.ReadBinary(); break;
                case MqttPropertyId.SubscriptionIdentifier:
                    var sid = block.ReadVariableByteInteger();
                    if (sid == 0) throw MqttProtocolException.Protocol("Subscription Identifier 0.");
                    (p.SubscriptionIdentifiers ??= []).Add(sid);
                    break;
                case MqttPropertyId.SessionExpiryInterval: p.SessionExpiryInterval = block.ReadUInt32(); break;
                case MqttPropertyId.AssignedClientIdentifier: p.AssignedClientIdentifier = block.ReadString(); break;
                case MqttPropertyId.ServerKeepAlive: p.ServerKeepAlive = block.ReadUInt16(); break;
                case MqttPropertyId.AuthenticationMethod: p.AuthenticationMethod = block.ReadString(); break;
                case MqttPropertyId.AuthenticationData: p.AuthenticationData = block.ReadBinary(); break;
                case MqttPropertyId.RequestProblemInformation: p.RequestProblemInformation = ReadFlag(ref block, id) == 1; break;
                case MqttPropertyId.WillDelayInterval: p.WillDelayInterval = block.ReadUInt32(); break;
                case MqttPropertyId.RequestResponseInformation: p.RequestResponseInformation = ReadFlag(ref block, id) == 1; break;
                case MqttPropertyId.ResponseInformation: p.ResponseInformation = block.ReadString(); break;
                case MqttPropertyId.ServerReference: p.ServerReference = block.ReadString(); break;
                case MqttPropertyId.ReasonString: p.ReasonString = block.ReadString(); break;
                case MqttPropertyId.ReceiveMaximum:
                    p.ReceiveMaximum = block.ReadUInt16();
                    if (p.ReceiveMaximum == 0) throw MqttProtocolException.Protocol("Receive Maximum 0.");
                    break;
                case MqttPropertyId.TopicAliasMaximum: p.TopicAliasMaximum = block.ReadUInt16(); break;
                case MqttPropertyId.TopicAlias:
                    p.TopicAlias = block.ReadUInt16();
                    if (p.TopicAlias == 0) throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, "Topic Alias 0.");
                    break;
                case MqttPropertyId.MaximumQoS: p.MaximumQoS = (MqttQualityOfService)ReadFlag(ref block, id); break;
                case MqttPropertyId.RetainAvailable: p.RetainAvailable = ReadFlag(ref block, id) == 1; break;
                case MqttPropertyId.UserProperty:
                    var name = block.ReadString();
                    var value = block.ReadString();
                    (p.UserProperties ??= []).Add(new MqttUserProperty(name, value));
                    break;
                case MqttPropertyId.MaximumPacketSize:
                    p.MaximumPacketSize = block.ReadUInt32();
                    if (p.MaximumPacketSize == 0) throw MqttProtocolException.Protocol("Maximum Packet Size 0.");
                    break;
                case MqttPropertyId.WildcardSubscriptionAvailable: p.WildcardSubscriptionAvailable = ReadFlag(ref block, id) == 1; break;
                case MqttPropertyId.SubscriptionIdentifierAvailable: p.SubscriptionIdentifiersAvailable = ReadFlag(ref block, id) == 1; break;
                case MqttPropertyId.SharedSubscriptionAvailable: p.SharedSubscriptionAvailable = ReadFlag(ref block, id) == 1; break;
                default: throw MqttProtocolException.Malformed($"Unknown property 0x{idValue:X2}.");
            }
        }
        return p;
    }

    private static byte ReadFlag(ref MqttBodyReader reader, MqttPropertyId id)
    {
        var b = reader.ReadByte();
        if (b > 1) throw MqttProtocolException.Protocol($"Property 0x{(byte)id:X2} has value {b}; only 0 or 1 is allowed.");
        return b;
    }

    /// <summary>Size of the property block without its length prefix; validates scope and values.</summary>
    public static int Size(MqttProperties? p, MqttPropertyScope scope)
    {
        if (p is null) return 0;
        var size = 0;
        if (p.PayloadFormatIndicator is not null) size += Check(MqttPropertyId.PayloadFormatIndicator, scope, 2);
        if (p.MessageExpiryInterval is not null) size += Check(MqttPropertyId.MessageExpiryInterval, scope, 5);
        if (p.ContentType is { } ct) size += Check(MqttPropertyId.ContentType, scope, 1 + MqttSize.String(ct));
        if (p.ResponseTopic is { } rt) size += Check(MqttPropertyId.ResponseTopic, scope, 1 + MqttSize.String(rt));
        if (p.CorrelationData is { } cd) size += Check(MqttPropertyId.CorrelationData, scope, 1 + MqttSize.Binary(cd.Length));
        if (p.SubscriptionIdentifiers is { Count: > 0 } sids)
        {
            if (scope != MqttPropertyScope.Publish && sids.Count > 1) throw MqttProtocolException.Protocol("Only one Subscription Identifier is allowed here.");
            foreach (var sid in sids)
            {
                if (sid is 0 or > MqttSize.MaxVariableByteInteger) throw MqttProtocolException.Protocol("Subscription Identifier out of range.");
                size += Check(MqttPropertyId.SubscriptionIdentifier, scope, 1 + MqttSize.VariableByteInteger(sid));
            }
        }
        if (p.SessionExpiryInterval is not null) size += Check(MqttPropertyId.SessionExpiryInterval, scope, 5);
        if (p.AssignedClientIdentifier is { } aci) size += Check(MqttPropertyId.AssignedClientIdentifier, scope, 1 + MqttSize.String(aci));
        if (p.ServerKeepAlive is not null) size += Check(MqttPropertyId.ServerKeepAlive, scope, 3);
        if (p.AuthenticationMethod is { } am) size += Check(MqttPropertyId.AuthenticationMethod, scope, 1 + MqttSize.String(am));
        if (p.AuthenticationData is { } ad) size += Check(MqttPropertyId.AuthenticationData, scope, 1 + MqttSize.Binary(ad.Length));
        if (p.RequestProblemInformation is not null) size += Check(MqttPropertyId.RequestProblemInformation, scope, 2);
        if (p.WillDelayInterval is not null) size += Check(MqttPropertyId.WillDelayInterval, scope, 5);
        if (p.RequestResponseInformation is not null) size += Check(MqttPropertyId.RequestResponseInformation, scope, 2);
        if (p.ResponseInformation is { } ri) size += Check(MqttPropertyId.ResponseInformation, scope, 1 + MqttSize.String(ri));
        if (p.ServerReference is { } sr) size += Check(MqttPropertyId.ServerReference, scope, 1 + MqttSize.String(sr));
        if (p.ReasonString is { } rs) size += Check(MqttPropertyId.ReasonString, scope, 1 + MqttSize.String(rs));
        if (p.ReceiveMaximum is { } rm)
        {
            if (rm == 0) throw MqttProtocolException.Protocol("Receive Maximum 0.");
            size += Check(MqttPropertyId.ReceiveMaximum, scope, 3);
        }
        if (p.TopicAliasMaximum is not null) size += Check(MqttPropertyId.TopicAliasMaximum, scope, 3);
        if (p.TopicAlias is { } ta)
        {
            if (ta == 0) throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, "Topic Alias 0.");
            size += Check(MqttPropertyId.TopicAlias, scope, 3);
        }
        if (p.MaximumQoS is { } mq)
        {
            if (mq > MqttQualityOfService.AtLeastOnce) throw MqttProtocolException.Protocol("Maximum QoS is 0 or 1 (absent means 2).");
            size += Check(MqttPropertyId.MaximumQoS, scope, 2);
        }
        if (p.RetainAvailable is not null) size += Check(MqttPropertyId.RetainAvailable, scope, 2);
        if (p.UserProperties is { } ups)
        {
            foreach (var up in ups) size += Check(MqttPropertyId.UserProperty, scope, 1 + MqttSize.String(up.Name) + MqttSize.String(up.Value));
        }
        if (p.MaximumPacketSize is { } mps)
        {
            if (mps == 0) throw MqttProtocolException.Protocol("Maximum Packet Size 0.");
            size += Check(MqttPropertyId.MaximumPacketSize, scope, 5);
        }
        if (p.WildcardSubscriptionAvailable is not null) size += Check(MqttPropertyId.WildcardSubscriptionAvailable, scope, 2);
        if (p.SubscriptionIdentifiersAvailable is not null) size += Check(MqttPropertyId.SubscriptionIdentifierAvailable, scope, 2);
        if (p.SharedSubscriptionAvailable is not null) size += Check(MqttPropertyId.SharedSubscriptionAvailable, scope, 2);
        return size;
    }

    private static int Check(MqttPropertyId id, MqttPropertyScope scope, int size)
    {
        if ((Allowed[(int)id] & scope) == 0) throw MqttProtocolException.Malformed($"Property {id} is not valid in this packet.");
        return size;
    }

    /// <summary>Writes the length prefix and the properties; <paramref name="size"/> comes from <see cref="Size"/>.</summary>
    public static void Write(ref MqttBodyWriter w, MqttProperties? p, int size)
    {
        w.WriteVariableByteInteger((uint)size);
        if (p is null || size == 0) return;
        if (p.PayloadFormatIndicator is { } pfi) { w.WriteByte((byte)MqttPropertyId.PayloadFormatIndicator); w.WriteByte((byte)pfi); }
        if (p.MessageExpiryInterval is { } mei) { w.WriteByte((byte)MqttPropertyId.MessageExpiryInterval); w.WriteUInt32(mei); }
        if (p.ContentType is { } ct) { w.WriteByte((byte)MqttPropertyId.ContentType); w.WriteString(ct); }
        if (p.ResponseTopic is { } rt) { w.WriteByte((byte)MqttPropertyId.ResponseTopic); w.WriteString(rt); }
        if (p.CorrelationData is { } cd) { w.WriteByte((byte)MqttPropertyId.CorrelationData); w.WriteBinary(cd.Span); }
        if (p.SubscriptionIdentifiers is { } sids)
        {
            foreach (var sid in sids) { w.WriteByte((byte)MqttPropertyId.SubscriptionIdentifier); w.WriteVariableByteInteger(sid); }
        }
        if (p.SessionExpiryInterval is { } sei) { w.WriteByte((byte)MqttPropertyId.SessionExpiryInterval); w.WriteUInt32(sei); }
        if (p.AssignedClientIdentifier is { } aci) { w.WriteByte((byte)MqttPropertyId.AssignedClientIdentifier); w.WriteString(aci); }
        if (p.ServerKeepAlive is { } ska) { w.WriteByte((byte)MqttPropertyId.ServerKeepAlive); w.WriteUInt16(ska); }
        if (p.AuthenticationMethod is { } am) { w.WriteByte((byte)MqttPropertyId.AuthenticationMethod); w.WriteString(am); }
        if (p.AuthenticationData is { } ad) { w.WriteByte((byte)MqttPropertyId.AuthenticationData); w.WriteBinary(ad.Span); }
        if (p.RequestProblemInformation is { } rpi) { w.WriteByte((byte)MqttPropertyId.RequestProblemInformation); w.WriteByte(rpi ? (byte)1 : (byte)0); }
        if (p.WillDelayInterval is { } wdi) { w.WriteByte((byte)MqttPropertyId.WillDelayInterval); w.WriteUInt32(wdi); }
        if (p.RequestResponseInformation is { } rri) { w.WriteByte((byte)MqttPropertyId.RequestResponseInformation); w.WriteByte(rri ? (byte)1 : (byte)0); }
        if (p.ResponseInformation is { } ri) { w.WriteByte((byte)MqttPropertyId.ResponseInformation); w.WriteString(ri); }
        if (p.ServerReference is { } sr) { w.WriteByte((byte)MqttPropertyId.ServerReference); w.WriteString(sr); }
        if (p.ReasonString is { } rs) { w.WriteByte((byte)MqttPropertyId.ReasonString); w.WriteString(rs); }
        if (p.ReceiveMaximum is { } rm) { w.WriteByte((byte)MqttPropertyId.ReceiveMaximum); w.WriteUInt16(rm); }
        if (p.TopicAliasMaximum is { } tam) { w.WriteByte((byte)MqttPropertyId.TopicAliasMaximum); w.WriteUInt16(tam); }
        if (p.TopicAlias is { } ta) { w.WriteByte((byte)MqttPropertyId.TopicAlias); w.WriteUInt16(ta); }
        if (p.MaximumQoS is { } mq) { w.WriteByte((byte)MqttPropertyId.MaximumQoS); w.WriteByte((byte)mq); }
        if (p.RetainAvailable is { } ra) { w.WriteByte((byte)MqttPropertyId.RetainAvailable); w.WriteByte(ra ? (byte)1 : (byte)0); }
        if (p.UserProperties is { } ups)
        {
            foreach (var up in ups) { w.WriteByte((byte)MqttPropertyId.UserProperty); w.WriteString(up.Name); w.WriteString(up.Value); }
        }
        if (p.MaximumPacketSize is { } mps) { w.WriteByte((byte)MqttPropertyId.MaximumPacketSize); w.WriteUInt32(mps); }
        if (p.WildcardSubscriptionAvailable is { } wsa) { w.WriteByte((byte)MqttPropertyId.WildcardSubscriptionAvailable); w.WriteByte(wsa ? (byte)1 : (byte)0); }
        if (p.SubscriptionIdentifiersAvailable is { } sia) { w.WriteByte((byte)MqttPropertyId.SubscriptionIdentifierAvailable); w.WriteByte(sia ? (byte)1 : (byte)0); }
        if (p.SharedSubscriptionAvailable is { } ssa) { w.WriteByte((byte)MqttPropertyId.SharedSubscriptionAvailable); w.WriteByte(ssa ? (byte)1 : (byte)0); }
    }
}
